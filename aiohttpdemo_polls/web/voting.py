"""Casting a ballot, and taking it back, for the voting form and the API alike: the browser's
voter id and its cookie, the voter code a poll may require (store.codes), the group-commit
writer (store.votes) on the application, and what each outcome says."""

import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import NamedTuple

from aiohttp import web
from psycopg2.errors import LockNotAvailable

from ..store import codes
from ..store.schema import PG_INT_MAX
from ..store.votes import RemovalOutcome, VoteBatcher, VoteNotCounted, VoteOutcome
from . import aiohttp_private
from .config import config_key, site
from .database import changes_key, engine_key
from .i18n import N_

VOTER_COOKIE = "polls_voter"
VOTER_COOKIE_MAX_AGE = 365 * 24 * 3600
NO_CHOICE = N_("You didn't select a choice.")
ALREADY_VOTED = N_("You already voted in this poll.")
VOTE_CHANGED = N_("Your vote was changed.")
VOTING_CLOSED = N_("Voting on this poll has closed; your vote was not counted.")
NOT_COUNTED = N_("Your vote was not counted, and nothing of it was kept. Please try again in a moment.")
VOTE_UNKNOWN = N_(
    "Your vote may have been counted: the connection to the database was lost before it could "
    "confirm. Voting again from this browser will never count twice."
)
VOTE_REMOVED = N_("Your vote was removed. You can vote again while voting is open.")
NO_VOTE_TO_REMOVE = N_("This browser has no vote in this poll to remove.")
REMOVAL_CLOSED = N_("Voting on this poll has closed, so votes can no longer be removed.")
# lock_votes: a ballot is final. Taking it back and voting again would be the change the maker
# ruled out, and remembering who may not vote again would keep the very id being removed.
VOTES_FINAL = N_("Votes in this poll are final: its maker locked them, so they cannot be removed.")
NOT_REMOVED = N_("Your vote was not removed. Please try again in a moment.")
CODE_NEEDED = N_("This poll needs a voter code: type the code you were given.")
CODE_WRONG = N_("That is not one of this poll's voter codes. Check it and try again.")
CODE_USED = N_("This voter code has already been used, and votes in this poll cannot be changed.")
CODE_SHAPE = N_("A voter code is 10 letters and digits, like 7K3QX-M9PDA.")
_VOTER_ID = re.compile(r"[A-Za-z0-9_-]{24}")
# Counted, or perhaps (UNKNOWN): a new voter needs the cookie so that voting again counts once.
_COOKIE_DUE = frozenset({VoteOutcome.COUNTED, VoteOutcome.UNKNOWN})


class Ballots(NamedTuple):
    """The process's vote writer, and whether the voter cookie is `Secure`: one lookup a vote."""

    writer: VoteBatcher
    secure_cookie: bool
    code_key: bytes  # the secret voter codes are hashed with (store/codes.py)


votes_key = web.AppKey("votes", Ballots)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_vote_batcher)


async def _vote_batcher(app: web.Application) -> AsyncIterator[None]:
    """The process's group-commit vote writer (store/votes.py); lets queued votes finish on shutdown.

    It tells the bus of changes of its commits at once, so this process's next page shows them."""
    batcher = VoteBatcher(app[engine_key], app[changes_key])
    config = app[config_key]
    app[votes_key] = Ballots(batcher, config["https"], config["voter_codes_key"].encode())
    yield
    await batcher.wait_idle()


def voter_id(request: web.Request) -> str | None:
    """The browser's voter id from its cookie, if it sent a well-formed one."""
    value = request.cookies.get(VOTER_COOKIE, "")
    return value if _VOTER_ID.fullmatch(value) else None


def possible_ballot(choice_ids: Sequence[int]) -> bool:
    """Whether these ids can be a ballot: at least one, each an id a choice can have (1..PG_INT_MAX).
    Whether they are the poll's choices is for the vote batcher to say."""
    return bool(choice_ids) and all(0 < c <= PG_INT_MAX for c in choice_ids)


class TypedCode(NamedTuple):
    """A form's or a body's `code` field, read."""

    code: str | None  # as stored (codes.normalize); None when none was given, or a bad one
    bad: bool  # something was given that cannot be a code: the view refuses it, naming the field


def read_code(typed: object) -> TypedCode:
    """The voter code the caller gave, if any, whatever its case, dashes and spaces."""
    if typed is None or (isinstance(typed, str) and not typed.strip()):
        return TypedCode(None, bad=False)
    code = codes.normalize(typed) if isinstance(typed, str) else None
    return TypedCode(code, bad=code is None)


def code_voter(request: web.Request, question_id: int, code: str) -> str:
    """The voter id of a code's ballot in this poll: its pages show that ballot to whoever
    brings the code."""
    return codes.code_voter(codes.code_hash(site(request)[votes_key].code_key, question_id, code))


def code_refusal(outcome: VoteOutcome, code: str | None) -> str | None:
    """What a voter is told when the poll refused the ballot for its code (a 403), else None."""
    if outcome is VoteOutcome.CODE_USED:
        return CODE_USED
    if outcome is VoteOutcome.CODE_REFUSED:
        return CODE_NEEDED if code is None else CODE_WRONG
    return None


class Cast(NamedTuple):
    """What casting a ballot came to, for the view to answer with."""

    outcome: VoteOutcome
    voter: str  # the request's voter id, or the new one the ballot was cast under
    cookie_due: bool  # a new voter whose vote may be in: set_voter_cookie gives them the cookie
    secure_cookie: bool


async def cast(
    request: web.Request,
    question_id: int,
    chosen: Sequence[int],
    ranked: bool = False,
    code: str | None = None,
    *,
    answers: Mapping[int, str] | None = None,
    name: str | None = None,
) -> Cast:
    """Cast the ballot under the caller's voter id, or a new one; a 503 when nothing of it was kept
    (the database is away, most likely). `ranked`: `chosen` is a ranking, best first. A date
    poll's ballot is `answers` and a `name`. On a poll that requires a voter code the ballot is
    `code`'s (read_code), whoever brings it: the vote writer checks it with the ballot, for
    every kind of poll."""
    voter = voter_id(request)
    new_voter = voter is None
    if voter is None:
        voter = secrets.token_urlsafe(18)  # 144 random bits
    try:
        ballots = site(request)[votes_key]
        writer = ballots.writer
        hashed = None if code is None else codes.code_hash(ballots.code_key, question_id, code)
        if ranked:
            outcome = await writer.cast_ranking(question_id, chosen, voter, hashed)
        else:
            outcome = await writer.cast(question_id, chosen, voter, hashed, answers=answers, name=name)
    except VoteNotCounted:
        raise web.HTTPServiceUnavailable(text=NOT_COUNTED) from None
    return Cast(outcome, voter, new_voter and outcome in _COOKIE_DUE, ballots.secure_cookie)


def set_voter_cookie(response: web.StreamResponse, ballot: Cast) -> None:
    """Give the voter cookie, a year long, to a new voter whose vote may be in; nobody else."""
    if ballot.cookie_due:  # a voter id is URL-safe base64: nothing in it needs quoting
        cookie = aiohttp_private.cookie_header(
            VOTER_COOKIE, ballot.voter, VOTER_COOKIE_MAX_AGE, ballot.secure_cookie
        )
        response.headers.add("Set-Cookie", cookie)


async def remove(request: web.Request, question_id: int) -> RemovalOutcome:
    """Take back the ballot of the caller's voter id (NO_BALLOT without one); a 503 when the
    ballot stayed locked past the database timeout, so nothing changed."""
    voter = voter_id(request)
    if voter is None:
        return RemovalOutcome.NO_BALLOT
    try:
        return await site(request)[votes_key].writer.remove(question_id, voter)
    except LockNotAvailable:
        raise web.HTTPServiceUnavailable(text=NOT_REMOVED) from None
