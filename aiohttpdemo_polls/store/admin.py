"""The operator's side of the database: the /admin password (an Argon2 hash, made elsewhere),
sessions, the limit on failed sign-ins, the moderation lists, hide, restore and delete, and the
append-only audit log every one of those writes to. Knows nothing of HTTP."""

import enum
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from . import limits
from .changes import Changes
from .schema import (
    admin_password,
    admin_session,
    audit_log,
    closed,
    question,
    released,
    report,
    sign_in_failure,
)

SESSION_LIFETIME = timedelta(hours=12)
SIGN_IN_FAILURES = 5  # per client address within SIGN_IN_WINDOW; then 429 until one leaves it
SIGN_IN_WINDOW = timedelta(minutes=15)
LISTED = 50  # polls in each list of the moderation page
SEARCH_WORDS = 10
REASON_MAX = 500  # of a reason the operator gives for an action
SIGNED_IN = "signed in"
WRONG_PASSWORD = "wrong password"


# -- the password and sessions ----------------------------------------------------------------


def set_password(connection: Any, password_hash: str) -> None:
    """Store the operator's password hash (a sync connection: `set-admin-password`), ending
    every session: a new password signs everyone out."""
    connection.execute(
        postgresql.insert(admin_password)
        .values(id=True, hash=password_hash)
        .on_conflict_do_update(index_elements=["id"], set_={"hash": password_hash, "set_at": sa.func.now()})
    )
    connection.execute(admin_session.delete())
    connection.execute(audit_log.insert().values(action="password_set"))


async def password_is_set(conn: Any) -> bool:
    return bool(await conn.scalar(sa.select(sa.exists().where(admin_password.c.id.is_(True)))))


class SignIn(enum.Enum):
    SIGNED_IN = "signed in"
    WRONG = "wrong password"
    NO_PASSWORD = "no password set"


async def sign_in(
    conn: Any, client: str, token_hash: bytes, matches: Callable[[str], Awaitable[bool]]
) -> SignIn:
    """Start a session under `token_hash` when `matches(stored hash)` says the password is right.

    Failures are counted per `client` (limits.TooMany past SIGN_IN_FAILURES in SIGN_IN_WINDOW,
    whatever the password) and the outcome written to the audit log, all in one transaction.
    """
    async with conn.begin():
        await limits.check(conn, sign_in_failure, client, SIGN_IN_FAILURES, SIGN_IN_WINDOW)
        stored = await conn.scalar(sa.select(admin_password.c.hash))
        if stored is None:
            return SignIn.NO_PASSWORD
        if not await matches(stored):
            await limits.record(conn, sign_in_failure, client)
            await _audit(conn, "sign_in_failed", None, WRONG_PASSWORD)
            return SignIn.WRONG
        # Ended sessions are of no use to anyone: they go when a new one starts.
        await conn.execute(admin_session.delete().where(admin_session.c.expires_at <= sa.func.now()))
        await conn.execute(
            admin_session.insert().values(token_hash=token_hash, expires_at=sa.func.now() + SESSION_LIFETIME)
        )
        await _audit(conn, "sign_in", None, SIGNED_IN)
    return SignIn.SIGNED_IN


async def session_is_valid(conn: Any, token_hash: bytes) -> bool:
    """Whether a session under this hash was started, not ended, and has not expired."""
    alive = sa.exists().where(
        admin_session.c.token_hash == token_hash, admin_session.c.expires_at > sa.func.now()
    )
    return bool(await conn.scalar(sa.select(alive)))


async def sign_out(conn: Any, token_hash: bytes) -> bool:
    """End the session at once (its cookie is refused from now on); False when there was none."""
    async with conn.begin():
        ended = await conn.execute(admin_session.delete().where(admin_session.c.token_hash == token_hash))
        if ended.rowcount:
            await _audit(conn, "sign_out", None, "")
    return bool(ended.rowcount)


# -- the audit log ----------------------------------------------------------------------------


async def _audit(conn: Any, action: str, question_id: int | None, reason: str) -> None:
    await conn.execute(audit_log.insert().values(action=action, question_id=question_id, reason=reason))


class Entry(NamedTuple):
    at: datetime
    action: str
    question_id: int | None
    reason: str


async def log_page(conn: Any, limit: int, offset: int) -> tuple[list[Entry], int]:
    """One page of the audit log, newest first, and how many entries it has in all."""
    query = (
        sa.select(
            audit_log.c.at,
            audit_log.c.action,
            audit_log.c.question_id,
            audit_log.c.reason,
            sa.func.count().over().label("total"),
        )
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = await (await conn.execute(query)).fetchall()
    total = rows[0].total if rows else await conn.scalar(sa.select(sa.func.count()).select_from(audit_log))
    return [Entry(r.at, r.action, r.question_id, r.reason) for r in rows], total


# -- what the moderation page lists -----------------------------------------------------------


class Moderated(NamedTuple):
    """A poll as the moderation page shows it."""

    id: int
    question_text: str
    pub_date: datetime
    released: bool
    closed: bool
    hidden_at: datetime | None
    reports: int
    last_report: datetime | None


_report_count = sa.select(sa.func.count()).where(report.c.question_id == question.c.id).scalar_subquery()
_last_report = sa.select(sa.func.max(report.c.created_at)).where(report.c.question_id == question.c.id)
_COLUMNS = (
    question.c.id,
    question.c.question_text,
    question.c.pub_date,
    released.label("released"),
    closed.label("closed"),
    question.c.hidden_at,
    _report_count.label("reports"),
    _last_report.scalar_subquery().label("last_report"),
)


async def _listed(conn: Any, query: Any) -> list[Moderated]:
    return [Moderated(*row.values()) for row in await (await conn.execute(query)).fetchall()]


async def reported(conn: Any) -> list[Moderated]:
    """Reported polls still shown: the most reported first, then those reported most recently."""
    query = (
        sa.select(*_COLUMNS)
        .where(question.c.hidden_at.is_(None), sa.exists().where(report.c.question_id == question.c.id))
        .order_by(sa.desc("reports"), sa.desc("last_report"), question.c.id.desc())
        .limit(LISTED)
    )
    return await _listed(conn, query)


async def hidden(conn: Any) -> list[Moderated]:
    """Hidden polls, the most recently hidden first: where the operator restores one."""
    query = (
        sa.select(*_COLUMNS)
        .where(question.c.hidden_at.isnot(None))
        .order_by(question.c.hidden_at.desc(), question.c.id.desc())
        .limit(LISTED)
    )
    return await _listed(conn, query)


def search_words(text: str) -> list[str]:
    """The words of a search, at most SEARCH_WORDS of them."""
    return text.split()[:SEARCH_WORDS]


def _like_pattern(word: str) -> str:
    """`%word%` with ILIKE's own wildcards (and its escape) in the word taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"


async def search(conn: Any, text: str) -> list[Moderated]:
    """Any poll (scheduled, hidden or closed too) whose question holds every word of `text`,
    ignoring case; newest first. ILIKE, so a word matches inside longer ones in any language."""
    words = search_words(text)
    if not words:
        return []
    found = [question.c.question_text.ilike(_like_pattern(w), escape="\\") for w in words]
    query = (
        sa.select(*_COLUMNS)
        .where(*found)
        .order_by(question.c.pub_date.desc(), question.c.id.desc())
        .limit(LISTED)
    )
    return await _listed(conn, query)


async def moderated_poll(conn: Any, question_id: int) -> Moderated | None:
    rows = await _listed(conn, sa.select(*_COLUMNS).where(question.c.id == question_id))
    return rows[0] if rows else None


# -- the actions ------------------------------------------------------------------------------


async def _set_hidden(conn: Any, changes: Changes, question_id: int, hide: bool, reason: str) -> bool:
    """Hide or restore the poll and log it, at once for every process (the bus of changes, and
    the `question` triggers' NOTIFY for the others); False when there was nothing to do."""
    async with changes.transaction(conn) as changed:
        now_shown = question.c.hidden_at.is_(None) if hide else question.c.hidden_at.isnot(None)
        updated = await conn.execute(
            question.update()
            .where(question.c.id == question_id, now_shown)
            .values(hidden_at=sa.func.now() if hide else None)
        )
        if updated.rowcount:
            await _audit(conn, "hide" if hide else "restore", question_id, reason)
            changed.add(question_id)
    return bool(updated.rowcount)


async def hide(conn: Any, changes: Changes, question_id: int, reason: str) -> bool:
    """Hide the poll: its pages answer 410, it leaves the lists, its live sockets close."""
    return await _set_hidden(conn, changes, question_id, True, reason)


async def restore(conn: Any, changes: Changes, question_id: int, reason: str) -> bool:
    """Show a hidden poll again, as it was."""
    return await _set_hidden(conn, changes, question_id, False, reason)


async def delete(conn: Any, changes: Changes, question_id: int, reason: str) -> bool:
    """Delete the poll with every choice, ballot, vote and report of it (ON DELETE CASCADE).

    As making.delete_poll, but its log entry is written in the same transaction: no deletion
    without its entry."""
    async with changes.transaction(conn) as changed:
        deleted = await conn.execute(question.delete().where(question.c.id == question_id))
        if deleted.rowcount:
            await _audit(conn, "delete", question_id, reason)
            changed.add(question_id)
    return bool(deleted.rowcount)
