"""Request handlers for the public pages: read the request, ask the cache or `db`, render.
Pages the same for every reader are rendered once and cached until their poll changes.
"""

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from . import compression, db, db_pages, forms, i18n, rules
from .cache import expiry
from .i18n import N_
from .keys import cache_key, config_key, engine_key, votes_key
from .votes import VoteNotCounted, VoteOutcome

PAGE_SIZE = 20
VOTER_COOKIE = "polls_voter"
VOTER_COOKIE_MAX_AGE = 365 * 24 * 3600
_VOTER_COOKIE_ATTRIBUTES = f"; HttpOnly; Max-Age={VOTER_COOKIE_MAX_AGE}; Path=/; SameSite=Lax"
NO_CHOICE = N_("You didn't select a choice.")
ALREADY_VOTED = N_("You already voted in this poll.")
VOTE_CHANGED = N_("Your vote was changed.")
# The results page's ?notice= after a vote that was not simply counted.
VOTE_NOTICES = {"already": ALREADY_VOTED, "changed": VOTE_CHANGED}
VOTING_CLOSED = N_("Voting on this poll has closed; your vote was not counted.")
NOT_COUNTED = N_("Your vote was not counted, and nothing of it was kept. Please try again in a moment.")
VOTE_UNKNOWN = N_(
    "Your vote may have been counted: the connection to the database was lost before it could "
    "confirm. Voting again from this browser will never count twice."
)
VOTE_NOT_CONFIRMED = N_("Vote not confirmed")
_VOTER_ID = re.compile(r"[A-Za-z0-9_-]{24}")
_PAGE = re.compile(r"[1-9][0-9]{0,8}")
_ID = re.compile(r"[1-9][0-9]{0,9}")


def poll_id(request: web.Request) -> int:
    """The question id in the URL, or a 404 for one no poll can have (past PostgreSQL's integer).

    The routes admit digits only, but of any length and in any script: `\\d` is Unicode.
    """
    raw = request.match_info["question_id"]
    if not raw.isascii() or len(raw.lstrip("0")) > 10 or not 0 < int(raw) <= db.PG_INT_MAX:
        raise web.HTTPNotFound()
    return int(raw)


def _page(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not _PAGE.fullmatch(raw):
        raise web.HTTPNotFound()
    return int(raw)


def voter_id(request: web.Request) -> str | None:
    """The browser's voter id from its cookie, if it sent a well-formed one."""
    value = request.cookies.get(VOTER_COOKIE, "")
    return value if _VOTER_ID.fullmatch(value) else None


def _chosen_ids(form: MultiMapping[str]) -> list[int] | None:
    """Choice ids from the form, or None when they cannot be a valid ballot.

    Whether the poll takes several is for the vote batcher to say (it reads the poll).
    """
    values = form.getall("choice", [])
    if not values:
        return None
    if not all(isinstance(v, str) and _ID.fullmatch(v.strip()) for v in values):
        return None
    return [int(v) for v in values]


class PollContent(NamedTuple):
    """A published poll as every reader sees it: the question row and its choices."""

    question: Any
    choices: list


def poll_expiry(question: Any) -> float:
    """When a poll's cached content or page goes stale by itself: at its closing, if still open."""
    return expiry(None if question.closed else question.closes_at)


async def published_content(request: web.Request, question_id: int) -> PollContent:
    """The published poll (cached until it changes or reaches `closes_at`), else a 404."""

    async def load() -> tuple[PollContent | None, float]:
        async with db.connection(request.app[engine_key]) as conn:
            found = await db_pages.published_poll(conn, question_id)
        if found is None:
            return None, 0
        question, choices = found
        return PollContent(question, choices), poll_expiry(question)

    content = await request.app[cache_key].get(("content", question_id), load)
    if content is None:
        raise web.HTTPNotFound()
    return content


async def voters_poll(request: web.Request, question_id: int, voter: str) -> tuple[Any, list]:
    """The poll read for this voter (their own choices marked, just-committed votes in it), or 404."""
    async with db.connection(request.app[engine_key]) as conn:
        found = await db_pages.published_poll(conn, question_id, voter)
    if found is None:  # gone since the cached copy was made
        raise web.HTTPNotFound()
    return found


Render = Callable[[], Awaitable[tuple[bytes | None, float]]]  # -> (page or None for a 404, expiry)


async def cached_page(request: web.Request, key: tuple, render: Render) -> web.Response:
    """A page the same for every reader: rendered and gzipped once, then served from the cache."""

    async def load() -> tuple[compression.Page | None, float]:
        body, expires = await render()
        return (None if body is None else compression.page(body)), expires

    # Per host: a page names its own full address (og:url) from the host it was reached by,
    # and one reader's Host header must not become every reader's link. Per language: each
    # is its own page.
    cached = await request.app[cache_key].get((*key, request.host, i18n.language(request)), load)
    if cached is None:
        raise web.HTTPNotFound()
    return compression.page_response(request, cached)


def render_page(request: web.Request, template: str, context: dict) -> bytes:
    """A page's bytes for the cache; `request` gives templates the language and host."""
    return aiohttp_jinja2.render_string(template, request, {**context, "request": request}).encode()


async def index(request: web.Request) -> web.Response:
    """Published polls, newest first, a page at a time."""
    page = _page(request)

    async def render() -> tuple[bytes | None, float]:
        async with db.connection(request.app[engine_key]) as conn:
            questions, total, upcoming = await db_pages.published_list(
                conn, PAGE_SIZE, (page - 1) * PAGE_SIZE
            )
        if not questions and page != 1:
            return None, 0
        context = {"questions": questions, "page": page, "pages": max(1, -(-total // PAGE_SIZE))}
        closing = [q.closes_at for q in questions if not q.closed]
        return render_page(request, "index.html", context), expiry(upcoming, *closing)

    return await cached_page(request, ("index", None, page), render)


async def poll(request: web.Request) -> web.Response:
    """The voting form, or the results once voting has closed.

    A browser that has voted gets the form with its choices ticked and a button to change
    them (read for it: not cached); everyone else the cached page.
    """
    question_id = poll_id(request)
    voter = voter_id(request)
    if voter is not None:
        content = await published_content(request, question_id)
        if content.question.closed:
            return await _voters_results(request, question_id, voter, notice=None)
        question, choices = await voters_poll(request, question_id, voter)
        if any(c.mine for c in choices):
            context = {"request": request, "question": question, "choices": choices, "error": None}
            return aiohttp_jinja2.render_template("detail.html", request, {**context, "voted": True})

    async def render() -> tuple[bytes, float]:
        content = await published_content(request, question_id)
        if content.question.closed:
            return _render_results(request, content)
        context = {"question": content.question, "choices": content.choices, "error": None}
        return render_page(request, "detail.html", context), poll_expiry(content.question)

    return await cached_page(request, ("poll", question_id), render)


async def vote(request: web.Request) -> web.Response:
    """Count the browser's ballot, then redirect to the results (POST-redirect-GET).

    The redirect is sent only once the ballot is committed (votes.VoteBatcher), so the
    results page it leads to always shows it. A vote reads nothing before it is queued:
    the batcher checks the poll (published, open, single or multiple choice) in its
    transaction, so a busy poll's votes never wait for its cached page to be reloaded.
    """
    question_id = poll_id(request)
    form = await forms.read_form(request)
    voter = voter_id(request)
    new_voter = voter is None
    if new_voter:
        voter = secrets.token_urlsafe(18)  # 144 random bits
    chosen = _chosen_ids(form)
    try:
        outcome = (
            VoteOutcome.INVALID_CHOICE
            if chosen is None
            else await request.app[votes_key].cast(question_id, chosen, voter)
        )
    except VoteNotCounted:
        # Nothing of it was kept (the database is away, most likely): the site's 503 page.
        raise web.HTTPServiceUnavailable(text=NOT_COUNTED) from None
    if outcome is VoteOutcome.INVALID_CHOICE:
        # Refused: an unknown poll is a 404, a closed one a 409, else the form says why.
        content = await published_content(request, question_id)
        if content.question.closed:  # whatever was sent: a closed poll shows no form to fix
            raise web.HTTPConflict(text=VOTING_CLOSED)
        return aiohttp_jinja2.render_template(
            "detail.html",
            request,
            {
                "request": request,
                "question": content.question,
                "choices": content.choices,
                "error": NO_CHOICE,
            },
            status=400,
        )
    if outcome is VoteOutcome.CLOSED:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    if outcome is VoteOutcome.UNKNOWN:
        return _vote_unknown(request, question_id, voter if new_voter else None)
    results = request.app.router["results"].url_for(question_id=str(question_id))
    if outcome is VoteOutcome.ALREADY_VOTED:
        results = results.with_query(already="1")
    elif outcome is VoteOutcome.CHANGED:
        results = results.with_query(changed="1")
    headers = {"Location": str(results)}
    if new_voter and outcome is VoteOutcome.COUNTED:
        headers["Set-Cookie"] = voter_cookie(voter, secure=request.app[config_key]["https"])
    # Returned, not raised: the hottest path in the app skips unwinding the middlewares.
    return web.Response(status=302, headers=headers)


def _vote_unknown(request: web.Request, question_id: int, new_voter: str | None) -> web.Response:
    """202: the vote may or may not be in. With the results this process last read, if it has
    them (the database is likely out of reach); a new voter gets the cookie, so that voting
    again counts once whatever happened."""
    content = request.app[cache_key].peek(("content", question_id))
    if content is not None:
        response = _results_response(request, content.question, content.choices, VOTE_UNKNOWN, voted=False)
        response.set_status(202)
    else:
        context = {"request": request, "status": 202, "reason": VOTE_NOT_CONFIRMED, "message": VOTE_UNKNOWN}
        response = aiohttp_jinja2.render_template("error.html", request, context, status=202)
    if new_voter is not None:
        response.headers["Set-Cookie"] = voter_cookie(new_voter, secure=request.app[config_key]["https"])
    return response


def voter_cookie(voter: str, secure: bool) -> str:
    """The Set-Cookie value `response.set_cookie` writes for the voter id, a year long.

    Written out because every new voter's vote needs one and aiohttp's builds a
    `http.cookies.Morsel` each time; a voter id is URL-safe base64, so nothing needs quoting.
    """
    return f"{VOTER_COOKIE}={voter}{_VOTER_COOKIE_ATTRIBUTES}{'; Secure' if secure else ''}"


async def results(request: web.Request) -> web.Response:
    """Votes per choice with percentages and bars; the reader's own choice is marked.

    From the cache for a reader who has no voter id and no notice to see, else read for them.
    """
    question_id = poll_id(request)
    notice = _notice(request)
    voter = voter_id(request)
    if voter is not None:
        return await _voters_results(request, question_id, voter, notice)
    if notice is not None:
        content = await published_content(request, question_id)
        return _results_response(request, content.question, content.choices, notice, voted=False)

    async def render() -> tuple[bytes, float]:
        return _render_results(request, await published_content(request, question_id))

    return await cached_page(request, ("results", question_id), render)


def _notice(request: web.Request) -> str | None:
    """What the results page says after a vote that was not simply counted (?already=1, ?changed=1)."""
    if not request.query_string:  # nearly every request: skip parsing the query
        return None
    return next((text for key, text in VOTE_NOTICES.items() if request.query.get(key)), None)


async def may_see_counts(request: web.Request, question: Any) -> bool:
    """rules.may_see_counts for this reader (never the maker here); their ballot is read
    only when it decides."""
    if rules.may_see_counts(question, voted=False, is_maker=False):
        return True
    voter = voter_id(request)
    if voter is None or not rules.may_see_counts(question, voted=True, is_maker=False):
        return False
    async with db.connection(request.app[engine_key]) as conn:
        return await db_pages.has_voted(conn, question.id, voter)


def _render_results(request: web.Request, content: PollContent) -> tuple[bytes, float]:
    """The results page as every reader without a voter id sees it, and until when it holds."""
    question = content.question
    context = {
        "question": question,
        "choices": content.choices,
        "notice": None,
        "show_counts": rules.may_see_counts(question, voted=False, is_maker=False),
    }
    return render_page(request, "results.html", context), poll_expiry(question)


async def _voters_results(
    request: web.Request, question_id: int, voter: str, notice: str | None
) -> web.Response:
    """The results read for this voter, counts included: their own vote, just committed, is
    on it even before this process hears of the change."""
    question, choices = await voters_poll(request, question_id, voter)
    return _results_response(request, question, choices, notice, voted=any(c.mine for c in choices))


def _results_response(
    request: web.Request, question: Any, choices: list, notice: str | None, voted: bool
) -> web.Response:
    """A results page made for one reader; counts, total and bars are left out for a reader
    who may not see them yet (rules.may_see_counts)."""
    context = {
        "request": request,
        "question": question,
        "choices": choices,
        "notice": notice,
        "show_counts": rules.may_see_counts(question, voted=voted, is_maker=False),
    }
    return aiohttp_jinja2.render_template("results.html", request, context)
