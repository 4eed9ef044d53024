"""The one way to make or change the schema: Alembic's migrations, run on the caller's
connection. `upgrade` brings any database to the newest revision in place, one an earlier
release made (tables, no `alembic_version`) from the revision that release had.
"""

from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
# What a database with the tables but no alembic_version is: release 1.0.0 made those, and
# so did the code between issue 11 and Alembic (its triggers are made again by 0002).
UNVERSIONED = "0001_release_1_0"
CONTEXT_OPTIONS: dict[str, Any] = {
    # A database's whole upgrade is one transaction: all of it happens or none.
    "transaction_per_migration": False,
    "compare_type": True,
    "compare_server_default": True,
}


class Upgrade(NamedTuple):
    """Where a database was (None: empty) and where it is now."""

    before: str | None
    after: str

    def describe(self) -> str:
        if self.before == self.after:
            return f"database already at {self.after}"
        if self.before is None:
            return f"database empty, upgraded to {self.after}"
        return f"database at {self.before}, upgraded to {self.after}"


def _config(connection: sa.engine.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision: what this code's queries expect."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current(connection: sa.engine.Connection) -> str | None:
    """The database's revision; UNVERSIONED for an earlier release's, None when empty."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None and sa.inspect(connection).has_table("question"):
        return UNVERSIONED
    return revision


def upgrade(connection: sa.engine.Connection, target: str = "head") -> Upgrade:
    """Bring the database to `head()` (or `target`), keeping every row (a sync connection
    in a transaction)."""
    before = current(connection)
    config = _config(connection)
    if before is not None and MigrationContext.configure(connection).get_current_revision() is None:
        command.stamp(config, before)  # an earlier release's: record what it has
    command.upgrade(config, target)
    return Upgrade(before, current(connection) or "")


def drop_all(connection: sa.engine.Connection) -> None:
    """Drop every table, view and trigger the migrations made, data included (`--reset`)."""
    before = current(connection)
    if before is None:
        return
    config = _config(connection)
    if MigrationContext.configure(connection).get_current_revision() is None:
        command.stamp(config, before)
    command.downgrade(config, "base")
    connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
