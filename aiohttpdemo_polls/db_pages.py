"""The reads behind the poll pages, compiled to SQL once at import: aiopg.sa would compile
each expression again on every call, and these run on every cache miss and every voter's
results page. No HTTP here.
"""

from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from . import db


class Question(NamedTuple):
    id: int
    question_text: str
    pub_date: datetime
    multiple: bool
    closes_at: datetime | None
    closed_at: datetime | None
    closed: bool
    results: str  # who may see the counts (rules.may_see_counts)
    lock_votes: bool


class Choice(NamedTuple):
    id: int
    choice_text: str
    votes: int
    percent: float
    mine: bool


def _poll_query(mine: Any) -> db.Compiled:
    """A published poll with its choices (none: one row with no choice_id), in choice order."""
    q, c = db.question, db.choice
    return db.compile_once(
        sa.select(
            q.c.id,
            q.c.question_text,
            q.c.pub_date,
            q.c.multiple,
            q.c.closes_at,
            q.c.closed_at,
            db.closed.label("closed"),
            q.c.results,
            q.c.lock_votes,
            c.c.id.label("choice_id"),
            c.c.choice_text,
            c.c.votes,
            db.percent(sa.func.sum(c.c.votes).over()).label("percent"),
            mine.label("mine"),
        )
        .select_from(q.outerjoin(c, c.c.question_id == q.c.id))
        .where(q.c.id == sa.bindparam("question_id"), db.published)
        .order_by(c.c.id)
    )


_POLL_FOR_ANYONE = _poll_query(sa.false())
_POLL_FOR_VOTER = _poll_query(
    sa.exists().where(
        db.vote.c.question_id == db.question.c.id,
        db.vote.c.voter == sa.bindparam("voter"),
        db.vote.c.choice_id == db.choice.c.id,
    )
)


async def published_poll(
    conn: Any, question_id: int, voter: str | None = None
) -> tuple[Question, list[Choice]] | None:
    """The published poll and its choices (`mine` marks the voter's), or None.

    `question_id` is one `views.poll_id` let through, so PostgreSQL's integer holds it.
    """
    if voter is None:
        result = await db.execute_compiled(conn, _POLL_FOR_ANYONE, question_id=question_id)
    else:
        result = await db.execute_compiled(conn, _POLL_FOR_VOTER, question_id=question_id, voter=voter)
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
        first["results"],
        first["lock_votes"],
    )
    choices = [
        Choice(row["choice_id"], row["choice_text"], row["votes"], float(row["percent"]), row["mine"])
        for row in rows
        if row["choice_id"] is not None
    ]
    return question, choices


_VOTED = db.compile_once(
    sa.select(
        sa.exists().where(
            db.ballot.c.question_id == sa.bindparam("question_id"),
            db.ballot.c.voter == sa.bindparam("voter"),
        )
    )
)


async def has_voted(conn: Any, question_id: int, voter: str) -> bool:
    """Whether this voter has a ballot in this poll (rules.may_see_counts asks)."""
    result = await db.execute_compiled(conn, _VOTED, question_id=question_id, voter=voter)
    return bool(await result.scalar())


class Listed(NamedTuple):
    id: int
    question_text: str
    pub_date: datetime
    closes_at: datetime | None
    closed: bool


# When the next scheduled poll is published: the list changes then by itself.
_next_publication = sa.select(sa.func.min(db.question.c.pub_date)).where(
    db.question.c.pub_date > sa.func.now()
)
_INDEX = db.compile_once(
    sa.select(
        db.question.c.id,
        db.question.c.question_text,
        db.question.c.pub_date,
        db.question.c.closes_at,
        db.closed.label("closed"),
        sa.func.count().over().label("total"),
        _next_publication.scalar_subquery().label("upcoming"),
    )
    .where(db.published)
    .order_by(db.question.c.pub_date.desc(), db.question.c.id.desc())
    .limit(sa.bindparam("limit"))
    .offset(sa.bindparam("offset"))
)
_NEXT_PUBLICATION = db.compile_once(_next_publication)


async def published_list(conn: Any, limit: int, offset: int) -> tuple[list[Listed], int, datetime | None]:
    """One page of published polls (newest first), how many are published in all, and
    when the next scheduled poll is published (the list changes then by itself), or None.

    One query whenever the page lists anything.
    """
    rows = await (await db.execute_compiled(conn, _INDEX, limit=limit, offset=offset)).fetchall()
    listed = [Listed(r["id"], r["question_text"], r["pub_date"], r["closes_at"], r["closed"]) for r in rows]
    if rows:
        return listed, rows[0]["total"], rows[0]["upcoming"]
    # Nothing on this page, so no row to carry `upcoming`: the one case with a second query.
    return listed, 0, await (await db.execute_compiled(conn, _NEXT_PUBLICATION)).scalar()
