"""Queries for polls made in the browser: create, look up for the maker, close, reopen,
delete, edit. Changes lock the poll's row first, so votes in flight finish before them and
later ones see the new state; once committed, they go on the bus of changes. Knows nothing of HTTP.
"""

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from . import limits
from .changes import Changes
from .schema import ballot, choice, closed, closed_since, poll_creation, question

CREATION_WINDOW = timedelta(hours=1)


class EditOutcome(enum.Enum):
    EDITED = "edited"
    HAS_VOTES = "has votes"
    GONE = "gone"


async def create_poll(
    conn: Any,
    changes: Changes,
    question_text: str,
    choice_texts: Sequence[str | Mapping[str, Any]],
    multiple: bool,
    closes_at: datetime | None,
    token_hash: bytes,
    client: str,
    per_hour: int,
    results: str = "always",
    lock_votes: bool = False,
    kind: str = "choices",
    **columns: Any,
) -> int:
    """Publish a poll made in the browser, with its choices, all or nothing; its id.

    Counted against `client`'s `per_hour` in the same transaction (limits.TooMany past it).
    `results` says who sees the counts before voting closes (rules.py); `lock_votes` keeps
    voters from changing their vote; `kind` is one of schema.KINDS. A choice is its text, or
    its columns (a date poll's option: `choice_text` and `day`, or `starts_at` and `ends_at`);
    `columns` are more of the question's (a date poll's `timezone`, `names_hidden`).
    """
    async with changes.transaction(conn) as changed:
        await limits.take(conn, poll_creation, client, per_hour, CREATION_WINDOW)
        question_id = await (
            await conn.execute(
                question.insert()
                .values(
                    question_text=question_text,
                    multiple=multiple,
                    closes_at=closes_at,
                    token_hash=token_hash,
                    results=results,
                    lock_votes=lock_votes,
                    kind=kind,
                    **columns,
                )
                .returning(question.c.id)
            )
        ).scalar()
        await conn.execute(
            choice.insert().values(
                [
                    {"question_id": question_id, **({"choice_text": c} if isinstance(c, str) else c)}
                    for c in choice_texts
                ]
            )
        )
        changed.add(question_id)
    return question_id


async def poll_made_with(conn: Any, token_hash: bytes) -> int | None:
    """The poll stored under this manage token's hash, if any: whether a `create_poll` whose
    answer was lost had committed. (No index: asked only then.)"""
    found = await conn.execute(sa.select(question.c.id).where(question.c.token_hash == token_hash))
    return await found.scalar()


async def managed_poll(conn: Any, question_id: int) -> Any:
    """The poll as its maker sees it (published or not, hidden or not): with `token_hash`,
    `hidden_at` (`hidden`: whether the operator hid it) and `ballots`."""
    ballots = (
        sa.select(sa.func.count())
        .select_from(ballot)
        .where(ballot.c.question_id == question.c.id)
        .scalar_subquery()
    )
    query = sa.select(
        question.c.id,
        question.c.question_text,
        question.c.pub_date,
        question.c.multiple,
        question.c.closes_at,
        question.c.closed_at,
        question.c.token_hash,
        question.c.results,
        question.c.lock_votes,
        question.c.kind,
        question.c.timezone,
        question.c.names_hidden,
        question.c.settled_choice_id,
        question.c.hidden_at,
        question.c.hidden_at.isnot(None).label("hidden"),
        question.c.requires_code,
        closed.label("closed"),
        closed_since.label("closed_since"),
        ballots.label("ballots"),
    ).where(question.c.id == question_id)
    return await (await conn.execute(query)).first()


async def _lock(conn: Any, question_id: int) -> Any:
    """Lock the poll's row against votes (FOR UPDATE waits for those in flight); its state or None."""
    query = (
        sa.select(question.c.id, closed.label("closed")).where(question.c.id == question_id).with_for_update()
    )
    return await (await conn.execute(query)).first()


async def close_poll(conn: Any, changes: Changes, question_id: int) -> bool:
    """Stop voting now; False when the poll was already closed or is gone."""
    async with changes.transaction(conn) as changed:
        state = await _lock(conn, question_id)
        if state is None or state.closed:
            return False
        await conn.execute(
            question.update().where(question.c.id == question_id).values(closed_at=sa.func.now())
        )
        changed.add(question_id)
    return True


async def reopen_poll(conn: Any, changes: Changes, question_id: int) -> bool:
    """Take votes again, also past a `closes_at` that has passed; False when it was open."""
    async with changes.transaction(conn) as changed:
        state = await _lock(conn, question_id)
        if state is None or not state.closed:
            return False
        await conn.execute(
            question.update()
            .where(question.c.id == question_id)
            .values(
                closed_at=None,
                settled_choice_id=None,  # a date poll open again is no longer settled
                closes_at=sa.case((question.c.closes_at <= sa.func.now(), None), else_=question.c.closes_at),
            )
        )
        changed.add(question_id)
    return True


async def delete_poll(conn: Any, changes: Changes, question_id: int) -> bool:
    """Delete the poll with its choices and votes; False when it was gone already."""
    async with changes.transaction(conn) as changed:
        deleted = await conn.execute(question.delete().where(question.c.id == question_id))
        if deleted.rowcount == 1:
            changed.add(question_id)
    return deleted.rowcount == 1


async def edit_poll(
    conn: Any, changes: Changes, question_id: int, question_text: str, choice_texts: Sequence[str]
) -> EditOutcome:
    """New texts for the question and its choices (in id order), only while nobody has voted.

    The row lock makes a vote in flight finish first (then the edit sees its ballot) or
    wait for the edit, so a vote is never counted for a text it was not cast on.
    """
    async with changes.transaction(conn) as changed:
        if await _lock(conn, question_id) is None:
            return EditOutcome.GONE
        voted = await (
            await conn.execute(sa.select(sa.exists().where(ballot.c.question_id == question_id)))
        ).scalar()
        if voted:
            return EditOutcome.HAS_VOTES
        ids = [
            row.id
            for row in await (
                await conn.execute(
                    sa.select(choice.c.id).where(choice.c.question_id == question_id).order_by(choice.c.id)
                )
            ).fetchall()
        ]
        if len(ids) != len(choice_texts):
            return EditOutcome.GONE
        await conn.execute(
            question.update().where(question.c.id == question_id).values(question_text=question_text)
        )
        for choice_id, text in zip(ids, choice_texts, strict=True):
            await conn.execute(choice.update().where(choice.c.id == choice_id).values(choice_text=text))
        changed.add(question_id)
    return EditOutcome.EDITED


def add_poll(
    connection: Any, question_text: str, choices: Sequence[str], **columns: Any
) -> tuple[int, list[int]]:
    """Insert a poll, its question and choices (a sync SQLAlchemy connection: init_db.py, tests).

    Returns the poll's id and its choices' ids, in the order given.
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
