"""Casting a ballot for the voting form and the API alike: the browser's voter id and its
cookie, the group-commit writer (store.votes) on the application, and what each outcome says."""

import re
from collections.abc import AsyncIterator

from aiohttp import web

from ..store.votes import VoteBatcher
from .database import changes_key, engine_key
from .i18n import N_

VOTER_COOKIE = "polls_voter"
VOTER_COOKIE_MAX_AGE = 365 * 24 * 3600
_VOTER_COOKIE_ATTRIBUTES = f"; HttpOnly; Max-Age={VOTER_COOKIE_MAX_AGE}; Path=/; SameSite=Lax"
NO_CHOICE = N_("You didn't select a choice.")
ALREADY_VOTED = N_("You already voted in this poll.")
VOTE_CHANGED = N_("Your vote was changed.")
VOTING_CLOSED = N_("Voting on this poll has closed; your vote was not counted.")
NOT_COUNTED = N_("Your vote was not counted, and nothing of it was kept. Please try again in a moment.")
VOTE_UNKNOWN = N_(
    "Your vote may have been counted: the connection to the database was lost before it could "
    "confirm. Voting again from this browser will never count twice."
)
_VOTER_ID = re.compile(r"[A-Za-z0-9_-]{24}")

votes_key = web.AppKey("votes", VoteBatcher)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_vote_batcher)


async def _vote_batcher(app: web.Application) -> AsyncIterator[None]:
    """The process's group-commit vote writer (store/votes.py); lets queued votes finish on shutdown.

    It tells the bus of changes of its commits at once, so this process's next page shows them."""
    batcher = VoteBatcher(app[engine_key], app[changes_key])
    app[votes_key] = batcher
    yield
    await batcher.wait_idle()


def voter_id(request: web.Request) -> str | None:
    """The browser's voter id from its cookie, if it sent a well-formed one."""
    value = request.cookies.get(VOTER_COOKIE, "")
    return value if _VOTER_ID.fullmatch(value) else None


def voter_cookie(voter: str, secure: bool) -> str:
    """The Set-Cookie value `response.set_cookie` writes for the voter id, a year long.

    Written out because every new voter's vote needs one and aiohttp's builds a
    `http.cookies.Morsel` each time; a voter id is URL-safe base64, so nothing needs quoting.
    """
    return f"{VOTER_COOKIE}={voter}{_VOTER_COOKIE_ATTRIBUTES}{'; Secure' if secure else ''}"
