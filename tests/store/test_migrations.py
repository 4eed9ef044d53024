"""The migrations are the one way to the schema: what they make is what db.py's tables say,
an empty database and an unversioned one (made before Alembic) both reach the newest
revision, and running them again changes nothing."""

import warnings

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aiohttpdemo_polls.store import migrate, schema


@pytest.fixture
def scratch(sync_engine):
    """The test database, to be taken apart; given back with the whole schema after."""
    yield sync_engine
    with sync_engine.begin() as conn:
        migrate.drop_all(conn)
        migrate.upgrade(conn)


def differences(engine) -> list:
    with engine.connect() as conn, warnings.catch_warnings():
        # Alembic cannot compare an index on expressions (pub_date DESC) and says so.
        warnings.filterwarnings("ignore", "autogenerate skipping", UserWarning)
        context = MigrationContext.configure(conn, opts=migrate.CONTEXT_OPTIONS)
        return compare_metadata(context, schema.metadata)


def test_migrated_schema_is_exactly_the_tables_db_py_declares(sync_engine):
    assert differences(sync_engine) == []


def test_a_table_db_py_lacks_would_be_found(scratch):
    with scratch.begin() as conn:
        conn.execute(sa.text("ALTER TABLE question ADD COLUMN stray int"))
    assert [d[0] for d in differences(scratch)] == ["remove_column"]


def test_empty_database_is_upgraded_from_the_start_and_then_left_alone(scratch):
    with scratch.begin() as conn:
        migrate.drop_all(conn)
        assert migrate.current(conn) is None
        assert sa.inspect(conn).get_table_names() == []
        assert migrate.upgrade(conn).describe() == f"database empty, upgraded to {migrate.head()}"
    with scratch.begin() as conn:
        assert migrate.upgrade(conn).describe() == f"database already at {migrate.head()}"
        assert migrate.current(conn) == migrate.head() == "0009_date_polls"


def test_database_made_between_issue_11_and_alembic_is_stamped_and_upgraded(scratch, make_question):
    with scratch.begin() as conn:  # tables and triggers, but no alembic_version
        migrate.drop_all(conn)
        migrate.upgrade(conn, "0002_notify_triggers")
        conn.execute(sa.text("DROP TABLE alembic_version"))
    poll = make_question("Made before Alembic?", choices=("Yes", "No"))
    with scratch.begin() as conn:
        assert migrate.current(conn) == migrate.UNVERSIONED
        done = migrate.upgrade(conn)
    assert done.describe() == f"database at 0001_release_1_0, upgraded to {migrate.head()}"
    with scratch.connect() as conn:
        row = conn.execute(
            sa.select(
                schema.question.c.question_text, schema.question.c.results, schema.question.c.lock_votes
            ).where(schema.question.c.id == poll["id"])
        ).one()
    assert tuple(row) == ("Made before Alembic?", "always", False)
    assert differences(scratch) == []


def test_results_setting_takes_only_the_three_known_values(sync_engine, make_question):
    make_question("Fine?", results="after_close")
    with pytest.raises(sa.exc.IntegrityError, match="question_results_check"):
        make_question("Not fine?", results="sometimes")


def test_poll_creation_counts_rows_per_client(sync_engine):
    with sync_engine.begin() as conn:
        conn.execute(schema.poll_creation.insert(), [{"client": "192.0.2.1"}, {"client": "192.0.2.1"}])
        counted = conn.execute(
            sa.select(sa.func.count()).where(
                schema.poll_creation.c.client == "192.0.2.1",
                schema.poll_creation.c.created_at > sa.func.now() - sa.text("interval '1 hour'"),
            )
        ).scalar_one()
        conn.execute(schema.poll_creation.delete())
    assert counted == 2
