"""Date polls in the database: the grid of participants' answers, and settling on an option.
Answers are cast, and a row removed, by votes.VoteBatcher like every ballot (one per voter per
poll, counters moved with the rows).
"""

import enum
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from .changes import Changes
from .schema import ANSWERS, ballot, choice, question, vote

KIND = "dates"  # schema.KINDS
YES, IF_NEED_BE, NO = ANSWERS


class Participant(NamedTuple):
    """One row of the grid: a name and an answer per option (choice id -> answer)."""

    name: str
    answers: dict[int, str]
    mine: bool  # the reader's own row (their voter cookie)


def _grid_query(voter: str | None) -> sa.sql.Select:
    mine = sa.func.coalesce(ballot.c.voter == voter, sa.false()) if voter else sa.false()
    return (
        sa.select(
            ballot.c.name,
            mine.label("mine"),
            sa.func.array_agg(aggregate_order_by(vote.c.choice_id, vote.c.choice_id)).label("choice_ids"),
            sa.func.array_agg(aggregate_order_by(vote.c.answer, vote.c.choice_id)).label("answers"),
        )
        .select_from(
            ballot.join(
                vote, sa.and_(vote.c.question_id == ballot.c.question_id, vote.c.voter == ballot.c.voter)
            )
        )
        .where(ballot.c.question_id == sa.bindparam("question_id"))
        .group_by(ballot.c.question_id, ballot.c.voter)
        .order_by(ballot.c.cast_at, ballot.c.voter)
    )


async def participants(conn: Any, question_id: int, voter: str | None = None) -> list[Participant]:
    """The poll's rows in the order they first answered; `mine` marks the voter's own."""
    rows = await (await conn.execute(_grid_query(voter), {"question_id": question_id})).fetchall()
    return [
        Participant(row.name or "", dict(zip(row.choice_ids, row.answers, strict=True)), bool(row.mine))
        for row in rows
    ]


class Settling(enum.Enum):
    SETTLED = "settled"
    NOT_AN_OPTION = "not an option"  # not one of this date poll's options
    GONE = "gone"


async def settle(conn: Any, changes: Changes, question_id: int, choice_id: int) -> Settling:
    """The maker's final option: recorded, and the poll closed (if it was open) in one change.

    The poll's row is locked FOR UPDATE, so answers in flight finish first."""
    async with changes.transaction(conn) as changed:
        poll = await (
            await conn.execute(
                sa.select(question.c.kind).where(question.c.id == question_id).with_for_update()
            )
        ).first()
        if poll is None:
            return Settling.GONE
        ours = await (
            await conn.execute(
                sa.select(sa.exists().where(choice.c.id == choice_id, choice.c.question_id == question_id))
            )
        ).scalar()
        if poll.kind != "dates" or not ours:
            return Settling.NOT_AN_OPTION
        await conn.execute(
            question.update()
            .where(question.c.id == question_id)
            .values(
                settled_choice_id=choice_id,
                closed_at=sa.func.coalesce(question.c.closed_at, sa.func.now()),
            )
        )
        changed.add(question_id)
    return Settling.SETTLED


def best_options(options: list[Any]) -> set[int]:
    """The ids of the options with the most yes, then the most if-need-be; none while no one
    said either. `options` have `id`, `votes` (yes) and `if_need_be`."""
    scored = [(o.votes, o.if_need_be) for o in options]
    top = max(scored, default=(0, 0))
    if top == (0, 0):
        return set()
    return {o.id for o, score in zip(options, scored, strict=True) if score == top}
