"""Tables and queries (SQLAlchemy Core). Knows nothing of HTTP.

Table and column names are the original demo's, so a psql user finds `question` and
`choice`; `ballot` and `vote` record who voted for what, one ballot per voter per poll.
"""

import enum
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from aiopg.sa.engine import get_dialect
from sqlalchemy.dialects.postgresql import insert as pg_insert

# Every transaction that changes a poll's votes or state notifies this channel with the
# poll's id; live results and caches listen to it. Sent inside the transaction, so it
# arrives only if the change commits.
CHANNEL = "poll_changes"
PG_INT_MAX = 2**31 - 1
TEXT_MAX = 200

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
    sa.Index("question_pub_date_idx", sa.text("pub_date DESC"), sa.text("id DESC")),
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

POLL_RESULTS_VIEW = """
CREATE OR REPLACE VIEW poll_results AS
SELECT q.id AS question_id,
       q.question_text AS question,
       c.id AS choice_id,
       c.choice_text AS choice,
       c.votes,
       round(100.0 * c.votes / nullif(sum(c.votes) OVER (PARTITION BY q.id), 0), 1) AS percent
FROM question q JOIN choice c ON c.question_id = q.id
ORDER BY q.id, c.id
"""


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


published = question.c.pub_date <= sa.func.now()


# True or false, never NULL (a bare `closes_at <= now()` is NULL when there is no closes_at).
def percent(total: Any) -> Any:
    """A choice's share of `total` votes in percent, one decimal; 0 while there are none."""
    return sa.func.coalesce(sa.func.round(100.0 * choice.c.votes / sa.func.nullif(total, 0), 1), 0)


closed = sa.or_(
    question.c.closed_at.isnot(None),
    sa.and_(question.c.closes_at.isnot(None), question.c.closes_at <= sa.func.now()),
)


class VoteOutcome(enum.Enum):
    COUNTED = "counted"
    ALREADY_VOTED = "already voted"
    INVALID_CHOICE = "invalid choice"
    CLOSED = "closed"


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
            counts = found[row.question_id] = LiveCounts(bool(row.closed), row.closes_at, [])
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


async def notify(conn: Any, question_id: int) -> None:
    """Tell listeners this poll changed; delivered only when the transaction commits."""
    await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, str(question_id))))


class _Refused(Exception):
    """Rolls back a vote transaction and carries the reason out of it."""

    def __init__(self, outcome: VoteOutcome) -> None:
        self.outcome = outcome


async def ping(conn: Any) -> None:
    """One round trip to the server; raises when the database does not answer."""
    await conn.scalar(sa.text("SELECT 1"))


async def cast_vote(conn: Any, question_id: int, choice_ids: Sequence[int], voter: str) -> VoteOutcome:
    """Record one voter's ballot for these choices and count it, all or nothing.

    The ballot's primary key makes a second ballot from the same voter a no-op, even when
    two arrive at once (the second waits for the first to commit, then finds it); the
    counters are added to by the database (`votes = votes + 1`), so no vote is lost.
    """
    wanted = sorted(set(choice_ids))
    if not wanted or any(not 0 < c <= PG_INT_MAX for c in wanted):
        return VoteOutcome.INVALID_CHOICE
    try:
        async with conn.begin():
            await _cast(conn, question_id, wanted, voter)
    except _Refused as refused:
        return refused.outcome
    return VoteOutcome.COUNTED


async def _cast(conn: Any, question_id: int, wanted: list[int], voter: str) -> None:
    # FOR KEY SHARE (the lock the ballot's foreign key takes anyway) makes a vote wait for
    # a maker's close, edit or delete in flight, then see its result: nothing counts after.
    state = await (
        await conn.execute(
            sa.select(closed.label("closed"))
            .where(question.c.id == question_id, published)
            .with_for_update(read=True, key_share=True)
        )
    ).first()
    if state is None:
        raise _Refused(VoteOutcome.INVALID_CHOICE)
    if state.closed:
        raise _Refused(VoteOutcome.CLOSED)
    new_ballot = await conn.execute(
        pg_insert(ballot)
        .values(question_id=question_id, voter=voter)
        .on_conflict_do_nothing()
        .returning(ballot.c.voter)
    )
    if await new_ballot.first() is None:
        raise _Refused(VoteOutcome.ALREADY_VOTED)
    counted = await conn.execute(
        choice.update()
        .where(choice.c.question_id == question_id, choice.c.id.in_(wanted))
        .values(votes=choice.c.votes + 1)
    )
    if counted.rowcount != len(wanted):
        raise _Refused(VoteOutcome.INVALID_CHOICE)
    await conn.execute(
        vote.insert().values([{"question_id": question_id, "voter": voter, "choice_id": c} for c in wanted])
    )
    await notify(conn, question_id)


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


def create_schema(connection: Any) -> None:
    """Create whatever tables, indexes and views are missing (a sync SQLAlchemy connection)."""
    metadata.create_all(connection, checkfirst=True)
    connection.execute(sa.text(POLL_RESULTS_VIEW))


def drop_schema(connection: Any) -> None:
    """Drop the view and every table, data included."""
    connection.execute(sa.text("DROP VIEW IF EXISTS poll_results"))
    metadata.drop_all(connection, checkfirst=True)
