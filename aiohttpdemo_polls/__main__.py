"""Command line: `python -m aiohttpdemo_polls [serve | init-db | psql | dsn | stop-db | purge |
set-admin-password] [-c FILE] [...]`."""

import argparse
import asyncio
import getpass
import os
import resource
import shutil
import sys
from collections.abc import Sequence

import aiopg.sa
import sqlalchemy as sa

from . import logs, settings
from .moderation import passwords
from .serve import MAX_WORKERS, run, run_gunicorn
from .store import admin, pgserver, provision, retention
from .store.changes import Changes


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aiohttpdemo_polls", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "init-db", "psql", "dsn", "stop-db", "purge", "set-admin-password"],
        help="serve the app (default); create its database (init-db --help); open psql on it; "
        "print the database URL; stop the embedded PostgreSQL server; delete the polls closed "
        "longer than retention.closed_days now; set the password of /admin (read from the "
        "terminal, or from standard input when it is not one)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with purge: list the polls it would delete, and delete nothing",
    )
    settings.config_argument(parser)
    parser.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help=f"serve with N worker processes under gunicorn, sharing the port (1 to {MAX_WORKERS}; "
        "default 1: this process serves)",
    )
    return parser.parse_args(argv)


def raise_open_files_limit() -> None:
    """Every live-results watcher holds a socket: allow as many as the hard limit lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worker_count(value: str) -> int:
    """--workers as a number, or ValueError with the one-line message."""
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_WORKERS:
        raise ValueError(f"--workers: expected a whole number from 1 to {MAX_WORKERS}, got {value!r}")
    return int(value)


def serve(config: dict, workers: int) -> int:
    logs.configure(config["log_level"])
    raise_open_files_limit()  # gunicorn's workers inherit it
    if workers == 1:
        return run(config)
    return run_gunicorn(config, workers)


def psql(config: dict) -> int:
    """Replace this process with psql on the app's database (the wheel's psql if needed)."""
    url = pgserver.configured_url(config)
    program = shutil.which("psql") or str(pgserver.bin_dir() / "psql")
    os.execv(program, [program, url])
    return 0  # not reached


def read_password() -> str:
    """The new password: typed twice without echo at a terminal, else stdin's first line
    (for scripts: `... set-admin-password < file`). Never an argument, which `ps` would show."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New /admin password: ")
    if getpass.getpass("Same again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def set_admin_password(config: dict) -> int:
    """Store the Argon2 hash of a new /admin password; every session ends."""
    try:
        password = read_password()
    except (ValueError, EOFError) as exc:
        print(f"error: {exc or 'no password given'}", file=sys.stderr)
        return 2
    problem = passwords.problem(password)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    engine = sa.create_engine(pgserver.configured_url(config), future=True)
    try:
        with engine.begin() as conn:
            admin.set_password(conn, passwords.hash_password(password))
    finally:
        engine.dispose()
    print("the /admin password is set; every earlier session has ended")
    return 0


def purge(config: dict, dry_run: bool) -> int:
    """What the app's hourly retention job does, now: list (--dry-run) or delete the old polls."""
    closed_days = config["retention"]["closed_days"]
    if closed_days == 0:
        print("retention.closed_days is 0: every poll is kept, none is deleted")
        return 0
    return asyncio.run(_purge(pgserver.configured_url(config), closed_days, dry_run))


async def _purge(url: str, closed_days: int, dry_run: bool) -> int:
    async with aiopg.sa.create_engine(url, minsize=1, maxsize=1) as engine, engine.acquire() as conn:
        expired = await retention.expired_polls(conn, closed_days)
        if dry_run:
            for poll in expired:
                print(f"{poll.id}\t{poll.question_text}\tclosed since {poll.closed_since:%Y-%m-%d %H:%M %Z}")
            print(f"{len(expired)} polls closed over {closed_days} days would be deleted")
            return 0
        # A bus nobody here listens to: the running app hears of it through the schema's triggers.
        bus = Changes(url)
        deleted: list[int] = []
        while True:  # a batch per transaction, as the app's job
            ids = await retention.purge_polls(conn, bus, closed_days, wait=True, limit=retention.PURGE_BATCH)
            deleted += ids or []
            if len(ids or []) < retention.PURGE_BATCH:
                break
    print(f"deleted {len(deleted)} polls closed over {closed_days} days")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "init-db" in argv:  # its options (--reset, --polls, --admin-url) are setup_db's, as init_db.py's
        argv.remove("init-db")
        return provision.main(argv, prog="python -m aiohttpdemo_polls init-db")
    args = parse_args(argv)
    if args.dry_run and args.command != "purge":
        print("error: --dry-run goes with purge only", file=sys.stderr)
        return 2
    try:
        workers = worker_count(args.workers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        config = settings.load(args.config, os.environ)
    except settings.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "dsn":
        print(pgserver.configured_url(config))
        return 0
    if args.command == "psql":
        return psql(config)
    if args.command == "set-admin-password":
        return set_admin_password(config)
    if args.command == "purge":
        return purge(config, args.dry_run)
    if args.command == "stop-db":
        stopped = pgserver.stop(settings.embedded_dir(config))
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
        return 0
    return serve(config, workers)


if __name__ == "__main__":
    sys.exit(main())
