"""The reads behind the maker's export files. Knows nothing of HTTP."""

from typing import Any

import sqlalchemy as sa

from .db import ballot, choice, vote


async def ballots(conn: Any, question_id: int) -> list:
    """Each ballot's number (1 = the first cast), time and chosen texts, a row per choice.

    Numbered rather than named: the voter id is the voter's cookie and stays in the database.
    """
    numbered = (
        sa.select(
            ballot.c.voter,
            ballot.c.cast_at,
            sa.func.row_number().over(order_by=(ballot.c.cast_at, ballot.c.voter)).label("number"),
        )
        .where(ballot.c.question_id == question_id)
        .subquery()
    )
    query = (
        sa.select(numbered.c.number, numbered.c.cast_at, choice.c.choice_text)
        .select_from(
            numbered.join(
                vote, sa.and_(vote.c.question_id == question_id, vote.c.voter == numbered.c.voter)
            ).join(choice, choice.c.id == vote.c.choice_id)
        )
        .order_by(numbered.c.number, choice.c.id)
    )
    return await (await conn.execute(query)).fetchall()
