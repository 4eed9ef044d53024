"""Who may make polls (`creation`: open, key or closed) and making one, for the new-poll form
and the API alike; every poll made through the site is counted against its client address
(`limits.polls_per_hour`) in the transaction that stores it.
"""

import hashlib
import hmac
import logging
from typing import Any, NamedTuple

import psycopg2
from aiohttp import web

from .. import logs
from ..store import connections, limits, making, tokens
from ..web import clients
from ..web.config import config_key, site
from ..web.database import changes_key, engine_key
from ..web.i18n import N_
from .form import PollForm

log = logging.getLogger(__name__)

CLOSED = N_("New polls cannot be made on this site.")
KEY_REQUIRED = N_("Enter the creation key this site's host gave you.")
WRONG_KEY = N_("That creation key is not right.")
TOO_MANY = N_("You have made too many polls in the last hour. Please try again later.")


def ensure_open(config: dict[str, Any]) -> None:
    """A 403 where polls are made only by the site's host (`creation: closed`)."""
    if config["creation"] == "closed":
        raise web.HTTPForbidden(text=CLOSED)


def needs_key(config: dict[str, Any]) -> bool:
    return config["creation"] == "key"


def key_problem(config: dict[str, Any], given: object) -> str | None:
    """Why `given` does not open poll creation, or None when it does (or none is needed).

    Compared in constant time, as digests of equal length, so the time taken tells nothing
    about the key, its length included.
    """
    if not needs_key(config):
        return None
    if not isinstance(given, str) or not given:
        return KEY_REQUIRED
    if not hmac.compare_digest(_digest(given), _digest(config["creation_key"])):
        return WRONG_KEY
    return None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class Made(NamedTuple):
    question_id: int
    token: str  # shown to the maker once, in the manage link


async def publish(request: web.Request, typed: PollForm) -> Made:
    """Store a checked poll, counted against the client's hourly limit (429 past it)."""
    token, token_hash = tokens.new_token()
    try:
        question_id = await _store(request, typed, token_hash)
    except limits.TooMany as exc:
        raise web.HTTPTooManyRequests(text=TOO_MANY, headers={"Retry-After": str(exc.retry_after)}) from None
    return Made(question_id, token)


async def _store(request: web.Request, typed: PollForm, token_hash: bytes) -> int:
    """The new poll's id. A connection lost under it gets one more try on another, where a
    poll already stored under the token means the first try had committed: made once."""
    for again in (False, True):
        try:
            async with connections.connection(site(request)[engine_key]) as conn:
                made = await making.poll_made_with(conn, token_hash) if again else None
                if made is not None:
                    return made
                return await making.create_poll(
                    conn,
                    site(request)[changes_key],
                    typed.question,
                    typed.choice_texts,
                    typed.multiple,
                    typed.closes_at_utc,
                    token_hash,
                    client=clients.of_request(request),
                    per_hour=site(request)[config_key]["limits"]["polls_per_hour"],
                    results=typed.results,
                    lock_votes=typed.lock_votes,
                    kind=typed.kind,
                    **typed.columns,
                )
        except psycopg2.Error as exc:
            if again or not connections.connection_lost(exc):
                raise
            log.info("poll not confirmed, trying once more: %s", logs.first_line(exc))
    raise AssertionError("unreachable")
