"""The reads behind the poll pages, as plain SQL: no HTTP, like `db`.

aiopg.sa compiles a SQLAlchemy expression on every call, which here costs more CPU than
PostgreSQL spends answering (about a millisecond per query under load, measured with
py-spy). These reads run on every cache miss and for every voter's results page, so they
are fixed SQL strings with parameters, and one round trip each. They return the same
fields `db.choices` does, so templates cannot tell.
"""

from datetime import datetime
from typing import Any, NamedTuple

from . import db


class Question(NamedTuple):
    id: int
    question_text: str
    pub_date: datetime
    multiple: bool
    closes_at: datetime | None
    closed_at: datetime | None
    closed: bool


class Choice(NamedTuple):
    id: int
    choice_text: str
    votes: int
    percent: float
    mine: bool


# A published poll with its choices (none: no row with a choice_id), in choice order.
_POLL = f"""
SELECT q.id, q.question_text, q.pub_date, q.multiple, q.closes_at, q.closed_at,
       (q.closed_at IS NOT NULL OR coalesce(q.closes_at <= now(), false)) AS closed,
       c.id AS choice_id, c.choice_text, c.votes,
       coalesce(round(100.0 * c.votes / nullif(sum(c.votes) OVER (), 0), 1), 0) AS percent,
       {{mine}} AS mine
FROM {db.question.name} q LEFT JOIN {db.choice.name} c ON c.question_id = q.id
WHERE q.id = %(question_id)s AND q.pub_date <= now()
ORDER BY c.id
"""
_POLL_FOR_ANYONE = _POLL.format(mine="false")
_POLL_FOR_VOTER = _POLL.format(
    mine=f"EXISTS (SELECT 1 FROM {db.vote.name} v WHERE v.question_id = q.id AND v.voter = %(voter)s "
    "AND v.choice_id = c.id)"
)


async def poll(conn: Any, question_id: int, voter: str | None = None) -> tuple[Question, list[Choice]] | None:
    """The published poll and its choices (`mine` marks the voter's), or None."""
    if not 0 < question_id <= db.PG_INT_MAX:
        return None
    if voter is None:
        result = await conn.execute(_POLL_FOR_ANYONE, {"question_id": question_id})
    else:
        result = await conn.execute(_POLL_FOR_VOTER, {"question_id": question_id, "voter": voter})
    rows = await result.fetchall()
    if not rows:
        return None
    first = rows[0]
    question = Question(
        first["id"],
        first["question_text"],
        first["pub_date"],
        first["multiple"],
        first["closes_at"],
        first["closed_at"],
        first["closed"],
    )
    choices = [
        Choice(row["choice_id"], row["choice_text"], row["votes"], float(row["percent"]), row["mine"])
        for row in rows
        if row["choice_id"] is not None
    ]
    return question, choices


class Listed(NamedTuple):
    id: int
    question_text: str
    pub_date: datetime
    closes_at: datetime | None
    closed: bool


_INDEX = f"""
SELECT id, question_text, pub_date, closes_at,
       (closed_at IS NOT NULL OR coalesce(closes_at <= now(), false)) AS closed,
       count(*) OVER () AS total
FROM {db.question.name} WHERE pub_date <= now()
ORDER BY pub_date DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
_NEXT_PUBLICATION = f"SELECT min(pub_date) FROM {db.question.name} WHERE pub_date > now()"


async def index(conn: Any, limit: int, offset: int) -> tuple[list[Listed], int, datetime | None]:
    """One page of published polls (newest first), how many are published in all, and
    when the next scheduled poll is published (the list changes then by itself), or None."""
    rows = await (await conn.execute(_INDEX, {"limit": limit, "offset": offset})).fetchall()
    listed = [Listed(r["id"], r["question_text"], r["pub_date"], r["closes_at"], r["closed"]) for r in rows]
    total = rows[0]["total"] if rows else 0
    upcoming = await (await conn.execute(_NEXT_PUBLICATION, {})).scalar()
    return listed, total, upcoming
