"""Command line: `python -m aiohttpdemo_polls [serve | psql | dsn | stop-db] [-c FILE]`."""

import argparse
import logging
import os
import resource
import shutil
import sys
from collections.abc import Sequence

import psycopg2
from aiohttp import web

from . import pgserver, settings
from .main import init_app

log = logging.getLogger("aiohttpdemo_polls")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aiohttpdemo_polls", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "psql", "dsn", "stop-db"],
        help="serve the app (default); open psql on its database; print the database URL; "
        "stop the embedded PostgreSQL server",
    )
    settings.config_argument(parser)
    return parser.parse_args(argv)


def raise_open_files_limit() -> None:
    """Every live-results watcher holds a socket: allow as many as the hard limit lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(config: dict) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise_open_files_limit()
    try:
        web.run_app(init_app(config=config), host=config["host"], port=config["port"])
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0]
        print(f"error: cannot use the database: {first_line} (did you run init_db.py?)", file=sys.stderr)
        return 1
    except OSError as exc:
        # Most often the port is taken (another copy of the app is running).
        print(f"error: cannot listen on {config['host']}:{config['port']}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def psql(config: dict) -> int:
    """Replace this process with psql on the app's database (the wheel's psql if needed)."""
    url = pgserver.configured_url(config)
    program = shutil.which("psql") or str(pgserver.bin_dir() / "psql")
    os.execv(program, [program, url])
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
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
    if args.command == "stop-db":
        stopped = pgserver.stop(settings.embedded_dir(config))
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
        return 0
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
