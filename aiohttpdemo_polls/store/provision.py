"""Create or upgrade the polls database: role and database when it can, the schema brought to
the newest migration keeping every row, sample polls into an empty one. Running it twice
changes nothing (`init_db.py` and `python -m aiohttpdemo_polls init-db`).
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg2
import sqlalchemy as sa
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from .. import settings
from . import making, migrate, pgserver, schema

SAMPLE_POLLS = [
    # (question, choices, options): the original demo's question first.
    ("What's new?", ["Not much", "The sky", "Just hacking again"], {"votes": [3, 5, 9]}),
    (
        "Which of these have you used to build a web app?",
        ["aiohttp", "Django", "Flask", "FastAPI"],
        {"multiple": True, "votes": [6, 4, 5, 3]},
    ),
    ("Tabs or spaces?", ["Tabs", "Spaces"], {"closed_days_ago": 1, "votes": [4, 7]}),
    (
        "When should the next release ship?",
        ["This week", "Next week", "When it is ready"],
        {"closes_in_days": 7},
    ),
    ("What should the next tutorial cover?", ["WebSockets", "Testing", "Deployment"], {"publish_in_days": 7}),
]
BATCH = 5000


def parse_args(argv: Sequence[str], prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    settings.config_argument(parser)
    parser.add_argument(
        "--admin-url",
        help="a superuser URL for an external server, used to create the role and database",
    )
    parser.add_argument("--reset", action="store_true", help="drop everything and start again")
    parser.add_argument("--polls", type=int, default=0, metavar="N", help="add N generated polls")
    return parser.parse_args(argv)


def ensure_role_and_database(admin_url: str, app_url: str) -> None:
    """Create the app's role and database on the server unless they exist."""
    target = parse_dsn(app_url)
    user, dbname, password = target.get("user"), target.get("dbname"), target.get("password")
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(user), sql.Literal(password or None)
                    )
                )
                print(f"created role {user}")
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(dbname), sql.Identifier(user)
                    )
                )
                print(f"created database {dbname}")
    finally:
        admin.close()


def add_sample_polls(conn: sa.engine.Connection) -> None:
    now = datetime.now(UTC)
    for age, (text, choices, options) in enumerate(SAMPLE_POLLS):
        pub_date = now + timedelta(days=options.get("publish_in_days", 0), minutes=-age)
        closes = options.get("closes_in_days")
        closed_ago = options.get("closed_days_ago")
        question_id, choice_ids = making.add_poll(
            conn,
            text,
            choices,
            pub_date=pub_date,
            multiple=options.get("multiple", False),
            closes_at=now + timedelta(days=closes) if closes else None,
            closed_at=now - timedelta(days=closed_ago) if closed_ago else None,
        )
        add_sample_votes(conn, question_id, choice_ids, options.get("votes", []))
    print(f"added {len(SAMPLE_POLLS)} sample polls")


def add_sample_votes(conn: sa.engine.Connection, question_id: int, choice_ids: list, counts: list) -> None:
    """Votes from made-up voters, recorded like real ones so counters equal vote rows."""
    ballots, votes = [], []
    for choice_id, count in zip(choice_ids, counts, strict=False):
        for n in range(count):
            voter = f"sample-{choice_id}-{n}"
            ballots.append({"question_id": question_id, "voter": voter})
            votes.append({"question_id": question_id, "voter": voter, "choice_id": choice_id})
    if not votes:
        return
    conn.execute(schema.ballot.insert(), ballots)
    conn.execute(schema.vote.insert(), votes)
    for choice_id, count in zip(choice_ids, counts, strict=False):
        conn.execute(schema.choice.update().where(schema.choice.c.id == choice_id).values(votes=count))


GENERATE_POLLS = sa.text(
    """
    WITH q AS (
        INSERT INTO question (question_text, pub_date)
        SELECT 'Generated poll #' || g, now() - make_interval(secs => g)
        FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS g
        RETURNING id
    )
    INSERT INTO choice (question_id, choice_text)
    SELECT q.id, 'Option ' || n FROM q, generate_series(1, 4) AS n
    """
)


def add_generated_polls(engine: sa.engine.Engine, count: int) -> None:
    """Bulk-insert `count` polls of four choices, a batch per transaction, with progress."""
    with engine.connect() as conn:
        start = conn.execute(sa.select(sa.func.count()).select_from(schema.question)).scalar_one()
    started = time.monotonic()
    for first in range(1, count + 1, BATCH):
        last = min(first + BATCH - 1, count)
        with engine.begin() as conn:
            conn.execute(GENERATE_POLLS, {"first": start + first, "last": start + last})
        print(f"\rgenerated {last}/{count} polls", end="", flush=True)
    print(f" in {time.monotonic() - started:.1f} s")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Set up the database the config names; the exit status (2 for bad arguments or config)."""
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    try:
        config = settings.load(args.config, os.environ)
    except settings.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.polls < 0:
        print("error: --polls: must not be negative", file=sys.stderr)
        return 2
    admin_url, app_url = args.admin_url, config["database"]["url"]
    if not app_url:
        admin_url = pgserver.start(settings.embedded_dir(config))
        app_url = pgserver.database_url(admin_url, config["database"])
    if admin_url:
        ensure_role_and_database(admin_url, app_url)

    engine = sa.create_engine(app_url, future=True)
    try:
        with engine.begin() as conn:
            if args.reset:
                migrate.drop_all(conn)
                print("dropped all tables")
            print(migrate.upgrade(conn).describe())
            has_polls = conn.execute(sa.select(sa.func.count()).select_from(schema.question)).scalar_one()
            if not has_polls:
                add_sample_polls(conn)
        if args.polls:
            add_generated_polls(engine, args.polls)
    finally:
        engine.dispose()
    return 0
