"""The reads behind the poll pages, compiled to SQL once at import: aiopg.sa would compile
each expression again on every call, and these run on every cache miss and every voter's
results page. No HTTP here.
"""

from collections.abc import Collection
from datetime import date, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from . import connections, schema


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
    kind: str  # schema.KINDS: which pages and count the poll has
    hidden: bool  # hidden by the site's operator: every page of it answers 410 (web/content.py)
    requires_code: bool  # a vote needs one of the poll's voter codes (codes.py)
    # A date poll's: its IANA zone, names shown to its maker only, the option settled on.
    timezone: str | None = None
    names_hidden: bool = False
    settled_choice_id: int | None = None


class Choice(NamedTuple):
    id: int
    choice_text: str
    votes: int  # a date poll's 'yes'
    percent: float
    mine: bool
    # A date poll's option: a whole day, or a start and an end (UTC); its if-need-be count.
    day: date | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    if_need_be: int = 0


def _poll_query(mine: Any) -> connections.Compiled:
    """A released poll with its choices (none: one row with no choice_id), in choice order;
    hidden ones too, so that their pages can say they were removed rather than never were."""
    q, c = schema.question, schema.choice
    return connections.compile_once(
        sa.select(
            q.c.id,
            q.c.question_text,
            q.c.pub_date,
            q.c.multiple,
            q.c.closes_at,
            q.c.closed_at,
            schema.closed.label("closed"),
            q.c.results,
            q.c.lock_votes,
            q.c.kind,
            q.c.hidden_at.isnot(None).label("hidden"),
            q.c.requires_code,
            q.c.timezone,
            q.c.names_hidden,
            q.c.settled_choice_id,
            c.c.id.label("choice_id"),
            c.c.choice_text,
            c.c.votes,
            c.c.day,
            c.c.starts_at,
            c.c.ends_at,
            c.c.if_need_be,
            schema.percent(sa.func.sum(c.c.votes).over()).label("percent"),
            mine.label("mine"),
        )
        .select_from(q.outerjoin(c, c.c.question_id == q.c.id))
        .where(q.c.id == sa.bindparam("question_id"), schema.released)
        .order_by(c.c.id)
    )


_POLL_FOR_ANYONE = _poll_query(sa.false())
_POLL_FOR_VOTER = _poll_query(
    sa.exists().where(
        schema.vote.c.question_id == schema.question.c.id,
        schema.vote.c.voter == sa.bindparam("voter"),
        schema.vote.c.choice_id == schema.choice.c.id,
    )
)


async def published_poll(
    conn: Any, question_id: int, voter: str | None = None
) -> tuple[Question, list[Choice]] | None:
    """The released poll and its choices (`mine` marks the voter's), or None; `hidden` says
    whether the operator hid it.

    `question_id` is one `web.request.poll_id` let through, so PostgreSQL's integer holds it.
    """
    if voter is None:
        result = await connections.execute_compiled(conn, _POLL_FOR_ANYONE, question_id=question_id)
    else:
        result = await connections.execute_compiled(
            conn, _POLL_FOR_VOTER, question_id=question_id, voter=voter
        )
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
        first["kind"],
        first["hidden"],
        first["requires_code"],
        first["timezone"],
        first["names_hidden"],
        first["settled_choice_id"],
    )
    choices = [
        Choice(
            row["choice_id"],
            row["choice_text"],
            row["votes"],
            float(row["percent"]),
            row["mine"],
            row["day"],
            row["starts_at"],
            row["ends_at"],
            row["if_need_be"],
        )
        for row in rows
        if row["choice_id"] is not None
    ]
    return question, choices


_VOTED = connections.compile_once(
    sa.select(
        sa.exists().where(
            schema.ballot.c.question_id == sa.bindparam("question_id"),
            schema.ballot.c.voter == sa.bindparam("voter"),
        )
    )
)


async def has_voted(conn: Any, question_id: int, voter: str) -> bool:
    """Whether this voter has a ballot in this poll (rules.may_see_counts asks)."""
    result = await connections.execute_compiled(conn, _VOTED, question_id=question_id, voter=voter)
    return bool(await result.scalar())


class Listed(NamedTuple):
    id: int
    question_text: str
    pub_date: datetime
    closes_at: datetime | None
    closed: bool
    kind: str  # schema.KINDS
    settled: bool  # a date poll its maker settled


# When the next scheduled poll is published: the list changes then by itself.
_next_publication = sa.select(sa.func.min(schema.question.c.pub_date)).where(
    schema.question.c.pub_date > sa.func.now()
)
_INDEX = connections.compile_once(
    sa.select(
        schema.question.c.id,
        schema.question.c.question_text,
        schema.question.c.pub_date,
        schema.question.c.closes_at,
        schema.closed.label("closed"),
        schema.question.c.kind,
        schema.question.c.settled_choice_id.isnot(None).label("settled"),
        sa.func.count().over().label("total"),
        _next_publication.scalar_subquery().label("upcoming"),
    )
    .where(schema.published)
    .order_by(schema.question.c.pub_date.desc(), schema.question.c.id.desc())
    .limit(sa.bindparam("limit"))
    .offset(sa.bindparam("offset"))
)
_NEXT_PUBLICATION = connections.compile_once(_next_publication)


async def published_list(conn: Any, limit: int, offset: int) -> tuple[list[Listed], int, datetime | None]:
    """One page of published polls (newest first), how many are published in all, and
    when the next scheduled poll is published (the list changes then by itself), or None.

    One query whenever the page lists anything.
    """
    rows = await (await connections.execute_compiled(conn, _INDEX, limit=limit, offset=offset)).fetchall()
    listed = [
        Listed(
            r["id"], r["question_text"], r["pub_date"], r["closes_at"], r["closed"], r["kind"], r["settled"]
        )
        for r in rows
    ]
    if rows:
        return listed, rows[0]["total"], rows[0]["upcoming"]
    # Nothing on this page, so no row to carry `upcoming`: the one case with a second query.
    return listed, 0, await (await connections.execute_compiled(conn, _NEXT_PUBLICATION)).scalar()


async def choices(conn: Any, question_id: int, voter: str | None = None) -> list:
    """The poll's choices in order, with votes, percent of the total, and `mine`."""
    total = sa.func.sum(schema.choice.c.votes).over()
    mine = (
        sa.select(schema.vote.c.choice_id)
        .where(
            schema.vote.c.question_id == question_id,
            schema.vote.c.choice_id == schema.choice.c.id,
            schema.vote.c.voter == voter,
        )
        .exists()
        if voter
        else sa.false()
    )
    query = (
        sa.select(
            schema.choice.c.id,
            schema.choice.c.choice_text,
            schema.choice.c.votes,
            schema.percent(total).label("percent"),
            mine.label("mine"),
            schema.choice.c.day,
            schema.choice.c.starts_at,
            schema.choice.c.ends_at,
            schema.choice.c.if_need_be,
        )
        .where(schema.choice.c.question_id == question_id)
        .order_by(schema.choice.c.id)
    )
    return await (await conn.execute(query)).fetchall()


class LiveCounts(NamedTuple):
    """One poll's counters as live results show them."""

    closed: bool
    closes_at: datetime | None
    results: str  # who may see the counts (rules.may_see_counts)
    # (choice id, votes, percent of the poll's total), in choice order.
    choices: list[tuple[int, int, float]]
    kind: str = schema.KINDS[0]
    removed: bool = False  # hidden by the site's operator: its watchers are told and closed
    # A date poll's: how many rows its grid has, and each option's if-need-be count (in
    # choice order), so that any answer changes its frame. None for other polls.
    participants: int | None = None
    if_need_be: list[int] | None = None


async def live_counts(conn: Any, question_ids: Collection[int]) -> dict[int, LiveCounts]:
    """Counters of several released polls in one query (`removed` for one the operator hid);
    a poll missing from the answer is gone.

    Live results read many polls at once after a burst of changes, so this is one query
    for all of them rather than a poll page's query per poll.
    """
    wanted = sorted(q for q in set(question_ids) if 0 < q <= schema.PG_INT_MAX)
    if not wanted:
        return {}
    total = sa.func.sum(schema.choice.c.votes).over(partition_by=schema.question.c.id)
    query = (
        sa.select(
            schema.question.c.id.label("question_id"),
            schema.closed.label("closed"),
            schema.question.c.closes_at,
            schema.question.c.results,
            schema.question.c.kind,
            schema.question.c.hidden_at.isnot(None).label("removed"),
            schema.choice.c.id.label("choice_id"),
            schema.choice.c.votes,
            schema.percent(total).label("percent"),
            schema.choice.c.if_need_be,
            sa.case(
                (
                    schema.question.c.kind == "dates",
                    sa.select(sa.func.count())
                    .where(schema.ballot.c.question_id == schema.question.c.id)
                    .scalar_subquery(),
                ),
            ).label("participants"),
        )
        .select_from(
            schema.question.outerjoin(schema.choice, schema.choice.c.question_id == schema.question.c.id)
        )
        .where(schema.question.c.id.in_(wanted), schema.released)
        .order_by(schema.question.c.id, schema.choice.c.id)
    )
    found: dict[int, LiveCounts] = {}
    for row in await (await conn.execute(query)).fetchall():
        counts = found.get(row.question_id)
        if counts is None:
            dates = row.participants is not None
            counts = found[row.question_id] = LiveCounts(
                bool(row.closed),
                row.closes_at,
                row.results,
                [],
                row.kind,
                bool(row.removed),
                row.participants,
                [] if dates else None,
            )
        if row.choice_id is not None:
            counts.choices.append((row.choice_id, row.votes, float(row.percent)))
            if counts.if_need_be is not None:
                counts.if_need_be.append(row.if_need_be)
    return found
