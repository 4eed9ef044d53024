"""Tables and queries (SQLAlchemy Core). Knows nothing of HTTP.

Table and column names are the original demo's, so a psql user finds `question` and
`choice`; `ballot` and `vote` record who voted for what, one ballot per voter per poll.
"""

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from aiopg.sa.engine import get_dialect

# The schema's triggers notify this channel with the id of every poll a committed change
# touched (its question, choices, counters or ballots), whoever made it; EVERYTHING after
# a TRUNCATE. Each process's caches and live results listen to it (notices.py).
CHANNEL = "poll_changes"
EVERYTHING = "*"
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

# One row per poll made through the site, by client address: the per-hour creation limit
# counts these, in the database, so every process and host shares one count.
poll_creation = sa.Table(
    "poll_creation",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),  # bigserial
    sa.Column("client", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("poll_creation_client_created_at_idx", "client", "created_at"),
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

# What makes every committed change to a poll reach every process, whoever made it: each
# statement on these tables notifies CHANNEL once per poll it touched (PostgreSQL sends a
# transaction's identical notices once, at commit). Statement-level triggers, so a vote
# batch of many ballots notifies once per poll, not once per row.
_POLL_KEY = {"question": "id", "choice": "question_id", "ballot": "question_id", "vote": "question_id"}
_TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "truncate": "",  # no rows to tell: EVERYTHING
}
_NOTIFY_FUNCTIONS = [f"notify_poll_changes_by_{key}" for key in sorted(set(_POLL_KEY.values()))]
_NOTIFY_TRUNCATE_FUNCTION = "notify_poll_changes_truncated"


def _notify_function(key: str) -> str:
    """The trigger function for tables whose `key` column names the poll."""
    notify = f"PERFORM pg_notify('{CHANNEL}', CAST(k AS text)) FROM"
    return f"""
CREATE OR REPLACE FUNCTION notify_poll_changes_by_{key}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {notify} (SELECT DISTINCT {key} FROM new_rows) AS d(k);
    ELSIF TG_OP = 'DELETE' THEN
        {notify} (SELECT DISTINCT {key} FROM old_rows) AS d(k);
    ELSE  -- UPDATE: a row moved to another poll changes both
        {notify} (SELECT {key} FROM old_rows UNION SELECT {key} FROM new_rows) AS d(k);
    END IF;
    RETURN NULL;
END $$"""


def _notify_trigger(table: str, key: str, event: str) -> str:
    function = _NOTIFY_TRUNCATE_FUNCTION if event == "truncate" else f"notify_poll_changes_by_{key}"
    return (
        f"CREATE OR REPLACE TRIGGER {table}_notify_{event} AFTER {event.upper()} ON {table} "
        f"{_TRANSITIONS[event]} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


# Replaced, not skipped, when they exist: init_db.py brings an older database up to date.
NOTIFY_TRIGGERS = [
    *(_notify_function(key) for key in sorted(set(_POLL_KEY.values()))),
    f"""
CREATE OR REPLACE FUNCTION {_NOTIFY_TRUNCATE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '{EVERYTHING}');
    RETURN NULL;
END $$""",
    *(_notify_trigger(table, key, event) for table, key in _POLL_KEY.items() for event in _TRANSITIONS),
]


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


def create_schema(connection: Any) -> None:
    """Create whatever tables, indexes and views are missing, and (re)create the notifying
    triggers, so an existing database gets them too (a sync SQLAlchemy connection)."""
    metadata.create_all(connection, checkfirst=True)
    connection.execute(sa.text(POLL_RESULTS_VIEW))
    for statement in NOTIFY_TRIGGERS:
        connection.execute(sa.text(statement))


def drop_schema(connection: Any) -> None:
    """Drop the view, the triggers and every table, data included."""
    connection.execute(sa.text("DROP VIEW IF EXISTS poll_results"))
    functions = ", ".join(f"{name}()" for name in [*_NOTIFY_FUNCTIONS, _NOTIFY_TRUNCATE_FUNCTION])
    connection.execute(sa.text(f"DROP FUNCTION IF EXISTS {functions} CASCADE"))
    metadata.drop_all(connection, checkfirst=True)
