"""The reads behind the maker's export files. Knows nothing of HTTP."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .polls import choices
from .schema import ballot, vote


def ballots_query(question_id: int) -> sa.sql.Select:
    """Each ballot's time and chosen choice ids (in the poll's order, or a ranking's), in the order cast.

    A ballot's votes are looked up by `vote`'s primary key, so reading n ballots costs n
    lookups whatever the planner believes: a join let stale statistics make it n² rows.
    """
    chosen = sa.func.array(  # PostgreSQL's ARRAY(subquery): {} for a ballot without votes
        sa.select(vote.c.choice_id)
        .where(vote.c.question_id == ballot.c.question_id, vote.c.voter == ballot.c.voter)
        .order_by(vote.c.rank, vote.c.choice_id)  # a ranking best first; other polls: no rank
        .scalar_subquery()
    )
    return (
        sa.select(ballot.c.cast_at, chosen.label("choice_ids"))
        .where(ballot.c.question_id == question_id)
        .order_by(ballot.c.cast_at, ballot.c.voter)
    )


async def ballots(conn: Any, question_id: int) -> list[tuple[datetime, list[str]]]:
    """Each ballot's time and chosen texts, in the order cast; the voter ids stay in the database.

    One snapshot for both reads, so a choice added meanwhile (say with psql) cannot be missed."""
    async with conn.begin(isolation_level="REPEATABLE READ", readonly=True):
        texts = {c.id: c.choice_text for c in await choices(conn, question_id)}
        cast = await (await conn.execute(ballots_query(question_id))).fetchall()
    return [(row.cast_at, [texts[c] for c in row.choice_ids]) for row in cast]
