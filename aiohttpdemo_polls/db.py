"""Tables and shared queries (SQLAlchemy Core); knows nothing of HTTP. Names are the original
demo's, so a psql user finds `question` and `choice`; `ballot` and `vote` record who voted
for what. The schema itself is made by the migrations (migrate.py).
"""

import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg2
import sqlalchemy as sa
from aiopg.sa import Engine, SAConnection
from aiopg.sa.engine import get_dialect

from . import aiopg_fixes

# The schema's triggers notify this channel with the id of every poll a committed change
# touched (its question, choices, counters or ballots), whoever made it; EVERYTHING after
# a TRUNCATE. Each process's caches and live results listen to it (notices.py).
CHANNEL = "poll_changes"
EVERYTHING = "*"
PG_INT_MAX = 2**31 - 1
TEXT_MAX = 200
# question.results: counts shown always, once the reader voted, or once voting closed.
RESULTS = ("always", "after_vote", "after_close")

# The migrations (migrate.py) make the schema; these definitions are what the queries use,
# and must match the newest revision (tests/test_migrations.py compares the two).
metadata = sa.MetaData()

question = sa.Table(
    "question",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question_text", sa.String(TEXT_MAX), nullable=False),
    sa.Column("pub_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("multiple", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("closes_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    # sha256 of the maker's private manage token; NULL for polls made with SQL or init_db.py.
    sa.Column("token_hash", sa.LargeBinary(32)),
    # When readers other than the maker see the counts (rules.may_see_counts).
    sa.Column("results", sa.Text, nullable=False, server_default=RESULTS[0]),
    # True: a voter's first ballot is final; else it may be changed while the poll is open.
    sa.Column("lock_votes", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("question_pub_date_idx", sa.text("pub_date DESC"), sa.text("id DESC")),
    sa.CheckConstraint(
        "results IN (" + ", ".join(f"'{r}'" for r in RESULTS) + ")", name="question_results_check"
    ),
)

choice = sa.Table(
    "choice",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), nullable=False),
    sa.Column("choice_text", sa.String(TEXT_MAX), nullable=False),
    sa.Column("votes", sa.Integer, nullable=False, server_default="0"),
    # Lets `vote` name (question, choice) together, so a vote can never cross polls;
    # also the index for "choices of a question".
    sa.UniqueConstraint("question_id", "id", name="choice_question_id_id_key"),
    sa.CheckConstraint("votes >= 0", name="choice_votes_check"),
)

ballot = sa.Table(
    "ballot",
    metadata,
    sa.Column("question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), primary_key=True),
    # The voter cookie's random id: the primary key makes one ballot per voter per poll.
    sa.Column("voter", sa.String(64), primary_key=True),
    sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # How often the voter changed it: votes.py applies a change only to the count it read.
    sa.Column("changes", sa.Integer, nullable=False, server_default="0"),
)

vote = sa.Table(
    "vote",
    metadata,
    sa.Column("question_id", sa.Integer, primary_key=True),
    sa.Column("voter", sa.String(64), primary_key=True),
    sa.Column("choice_id", sa.Integer, primary_key=True),
    sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.ForeignKeyConstraint(
        ["question_id", "voter"], ["ballot.question_id", "ballot.voter"], ondelete="CASCADE"
    ),
    sa.ForeignKeyConstraint(
        ["question_id", "choice_id"], ["choice.question_id", "choice.id"], ondelete="CASCADE"
    ),
    sa.Index("vote_question_id_choice_id_idx", "question_id", "choice_id"),
)

# One row per poll made, by client address: the creation limit counts them here, so every
# process and host shares the count.
poll_creation = sa.Table(
    "poll_creation",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("client", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("poll_creation_client_created_at_idx", "client", "created_at"),
)


class Compiled(NamedTuple):
    """An expression's SQL text and the values of its own literals (100.0, 1, 0...)."""

    sql: str
    defaults: dict[str, Any]


def compile_once(clause: Any) -> Compiled:
    """Compile an expression with aiopg.sa's own dialect, for statements run many times:
    aiopg.sa would otherwise compile it again on every call."""
    compiled = clause.compile(dialect=get_dialect())
    return Compiled(str(compiled), dict(compiled.params))


async def execute_compiled(conn: Any, query: Compiled, **params: Any) -> Any:
    return await conn.execute(query.sql, {**query.defaults, **params})


# SQLSTATE classes after which a connection is not trusted again: connection exceptions,
# operator intervention (a terminated backend), insufficient resources, system and internal errors.
_BROKEN = frozenset({"08", "53", "57", "58", "XX"})


def ordinary_sql_error(exc: BaseException) -> bool:
    """An error the server answered and its connection survives: bad data, a constraint."""
    code = getattr(exc, "pgcode", None)
    return isinstance(exc, psycopg2.Error) and code is not None and code[:2] not in _BROKEN


def connection_lost(exc: BaseException) -> bool:
    """The connection failed under a statement (ended, dropped, closed), not the statement:
    on another connection it may well succeed."""
    lost = isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
    return lost and not ordinary_sql_error(exc)


@contextlib.asynccontextmanager
async def connection(engine: Engine) -> AsyncIterator[SAConnection]:
    """A connection from the pool, given back only if it is idle and raised nothing but an
    ordinary SQL error; any other is closed, so a broken connection is never lent again."""
    async with engine.acquire() as conn:
        try:
            yield conn
        except BaseException as exc:
            if isinstance(exc, psycopg2.Error) and not ordinary_sql_error(exc):
                conn.connection.close()
                if connection_lost(exc):
                    await aiopg_fixes.drop_idle(engine)
            raise
        finally:
            if not conn.closed and not aiopg_fixes.is_idle(conn):
                conn.connection.close()


published = question.c.pub_date <= sa.func.now()


# True or false, never NULL (a bare `closes_at <= now()` is NULL when there is no closes_at).
def percent(total: Any) -> Any:
    """A choice's share of `total` votes in percent, one decimal; 0 while there are none."""
    return sa.func.coalesce(sa.func.round(100.0 * choice.c.votes / sa.func.nullif(total, 0), 1), 0)


closed = sa.or_(
    question.c.closed_at.isnot(None),
    sa.and_(question.c.closes_at.isnot(None), question.c.closes_at <= sa.func.now()),
)


async def choices(conn: Any, question_id: int, voter: str | None = None) -> list:
    """The question's choices in order, with votes, percent of the total, and `mine`."""
    total = sa.func.sum(choice.c.votes).over()
    mine = (
        sa.select(vote.c.choice_id)
        .where(
            vote.c.question_id == question_id,
            vote.c.choice_id == choice.c.id,
            vote.c.voter == voter,
        )
        .exists()
        if voter
        else sa.false()
    )
    query = (
        sa.select(
            choice.c.id,
            choice.c.choice_text,
            choice.c.votes,
            percent(total).label("percent"),
            mine.label("mine"),
        )
        .where(choice.c.question_id == question_id)
        .order_by(choice.c.id)
    )
    return await (await conn.execute(query)).fetchall()


class LiveCounts(NamedTuple):
    """One poll's counters as live results show them."""

    closed: bool
    closes_at: datetime | None
    results: str  # who may see the counts (rules.may_see_counts)
    # (choice id, votes, percent of the poll's total), in choice order.
    choices: list[tuple[int, int, float]]


async def live_counts(conn: Any, question_ids: Collection[int]) -> dict[int, LiveCounts]:
    """Counters of several published polls in one query; a poll missing from the answer is gone.

    Live results read many polls at once after a burst of changes, so this is one query
    for all of them rather than a poll page's query per poll.
    """
    wanted = sorted(q for q in set(question_ids) if 0 < q <= PG_INT_MAX)
    if not wanted:
        return {}
    total = sa.func.sum(choice.c.votes).over(partition_by=question.c.id)
    query = (
        sa.select(
            question.c.id.label("question_id"),
            closed.label("closed"),
            question.c.closes_at,
            question.c.results,
            choice.c.id.label("choice_id"),
            choice.c.votes,
            percent(total).label("percent"),
        )
        .select_from(question.outerjoin(choice, choice.c.question_id == question.c.id))
        .where(question.c.id.in_(wanted), published)
        .order_by(question.c.id, choice.c.id)
    )
    found: dict[int, LiveCounts] = {}
    for row in await (await conn.execute(query)).fetchall():
        counts = found.get(row.question_id)
        if counts is None:
            counts = found[row.question_id] = LiveCounts(bool(row.closed), row.closes_at, row.results, [])
        if row.choice_id is not None:
            counts.choices.append((row.choice_id, row.votes, float(row.percent)))
    return found


async def listen(raw_conn: Any) -> None:
    """LISTEN on `CHANNEL` on a plain aiopg connection (live results hold one per process)."""
    async with raw_conn.cursor() as cursor:
        await cursor.execute(f"LISTEN {CHANNEL}")


async def ping_raw(raw_conn: Any) -> None:
    """`ping` for a plain aiopg connection (the live-results listener's): raises if it is dead."""
    async with raw_conn.cursor() as cursor:
        await cursor.execute("SELECT 1")


async def ping(conn: Any) -> None:
    """One round trip to the server; raises when the database does not answer."""
    await conn.scalar(sa.text("SELECT 1"))


def add_poll(
    connection: Any, question_text: str, choices: Sequence[str], **columns: Any
) -> tuple[int, list[int]]:
    """Insert a question and its choices (a sync SQLAlchemy connection: init_db.py, tests).

    Returns the question's id and its choices' ids, in the order given.
    """
    question_id = connection.execute(
        question.insert().values(question_text=question_text, **columns).returning(question.c.id)
    ).scalar_one()
    choice_ids = (
        connection.execute(
            choice.insert()
            .values([{"question_id": question_id, "choice_text": c} for c in choices])
            .returning(choice.c.id)
        )
        .scalars()
        .all()
    )
    return question_id, sorted(choice_ids)
