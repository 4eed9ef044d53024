"""The public pages: the index, a poll, voting, its results. Read the request, ask the cache or
the store, render.
Pages the same for every reader are rendered once and cached until their poll changes.
"""

import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from ..store import codes, connections, polls, rules
from ..store.votes import RemovalOutcome, VoteOutcome
from ..web import forms
from ..web.cache import cache_key, expiry
from ..web.config import site
from ..web.content import (
    PollContent,
    cached_page,
    poll_expiry,
    published_content,
    render_page,
    voters_poll,
)
from ..web.database import engine_key
from ..web.i18n import N_
from ..web.request import PAGE_SIZE, page_count, page_number, poll_id
from ..web.voting import (
    ALREADY_VOTED,
    CODE_SHAPE,
    NO_CHOICE,
    NO_VOTE_TO_REMOVE,
    REMOVAL_CLOSED,
    VOTE_CHANGED,
    VOTE_REMOVED,
    VOTE_UNKNOWN,
    VOTES_FINAL,
    VOTING_CLOSED,
    Cast,
    cast,
    code_refusal,
    code_voter,
    possible_ballot,
    read_code,
    remove,
    set_voter_cookie,
    voter_id,
)
from . import kinds

# The results page's ?notice= after a vote that was not simply counted, or taken back.
VOTE_NOTICES = {
    "already": ALREADY_VOTED,
    "changed": VOTE_CHANGED,
    "removed": VOTE_REMOVED,
    "unvoted": NO_VOTE_TO_REMOVE,
}
VOTE_NOT_CONFIRMED = N_("Vote not confirmed")
_ID = re.compile(r"[1-9][0-9]{0,9}")  # written as a choice id is: no sign, no leading zeros


def _query_code(request: web.Request) -> str | None:
    """A voter code brought in the address (`?code=`, the QR link on a code's card), if well-formed."""
    if not request.query_string:  # nearly every request: skip parsing the query
        return None
    return read_code(request.query.get("code")).code


def _chosen_ids(form: MultiMapping[str]) -> list[int] | None:
    """Choice ids from the form, or None when they cannot be a valid ballot.

    Whether the poll takes several is for the vote batcher to say (it reads the poll).
    """
    values = form.getall("choice", [])
    if not all(isinstance(v, str) and _ID.fullmatch(v.strip()) for v in values):
        return None
    chosen = [int(v) for v in values]
    return chosen if possible_ballot(chosen) else None


async def index(request: web.Request) -> web.Response:
    """Published polls, newest first, a page at a time."""
    page = page_number(request)
    if page is None:
        raise web.HTTPNotFound()

    async def render() -> tuple[bytes | None, float]:
        async with connections.connection(site(request)[engine_key]) as conn:
            questions, total, upcoming = await polls.published_list(conn, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        if not questions and page != 1:
            return None, 0
        context = {"questions": questions, "page": page, "pages": page_count(total)}
        closing = [q.closes_at for q in questions if not q.closed]
        return render_page(request, "index.html", context), expiry(upcoming, *closing)

    return await cached_page(request, ("index", None, page), render)


async def poll(request: web.Request) -> web.Response:
    """The voting form, or the results once voting has closed.

    A browser that has voted gets the form with its choices ticked and a button to change
    them (read for it: not cached); everyone else the cached page.
    """
    question_id = poll_id(request)
    content = await published_content(request, question_id)
    pages = kinds.PAGES.get(content.question.kind)
    if pages is not None:
        return await pages.poll(request, content)
    voter = voter_id(request)
    brought = request.query.get("code") if request.query_string else None
    if brought is not None:
        return await _code_form(request, question_id, brought)
    if voter is not None:
        if content.question.closed:
            return await _voters_results(request, question_id, voter, notice=None)
        if not content.question.requires_code:  # else the ballot is a code's, not the browser's
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


async def _code_form(request: web.Request, question_id: int, brought: str) -> web.Response:
    """The form with the code from the address filled in (the QR link on a code's card), and
    the code's ballot ticked if it has one. Made for this reader: the code is theirs alone."""
    content = await published_content(request, question_id)
    if content.question.closed:
        return _results_response(request, content.question, content.choices, None, voted=False)
    question, choices = content
    code = read_code(brought).code
    if code is not None and question.requires_code:
        question, choices = await voters_poll(request, question_id, code_voter(request, question_id, code))
    context = {
        "request": request,
        "question": question,
        "choices": choices,
        "error": None,
        "voted": any(c.mine for c in choices),
        "code": codes.grouped(code) if code else brought[: codes.TYPED_MAX],
    }
    return aiohttp_jinja2.render_template("detail.html", request, context)


async def vote(request: web.Request) -> web.Response:
    """Count the browser's ballot, then redirect to the results (POST-redirect-GET).

    The redirect is sent only once the ballot is committed (votes.VoteBatcher), so the
    results page it leads to always shows it. A vote reads nothing before it is queued:
    the batcher checks the poll (published, open, single or multiple choice) in its
    transaction, so a busy poll's votes never wait for its cached page to be reloaded.
    """
    question_id = poll_id(request)
    form = await forms.read_form(request)
    typed = read_code(form.get("code"))
    if typed.bad:
        return await _refused(request, question_id, form, CODE_SHAPE)
    chosen = _chosen_ids(form)
    if chosen is None:
        return await _refused(request, question_id, form)
    ballot = await cast(request, question_id, chosen, code=typed.code)
    outcome = ballot.outcome
    if outcome is VoteOutcome.INVALID_CHOICE:
        return await _refused(request, question_id, form)
    if outcome is VoteOutcome.CLOSED:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    refusal = code_refusal(outcome, typed.code)
    if refusal is not None:
        return await _refused(request, question_id, form, refusal, status=403)
    if outcome is VoteOutcome.UNKNOWN:
        return _vote_unknown(request, question_id, ballot)
    results = request.app.router["results"].url_for(question_id=str(question_id))
    # The code's ballot is shown to whoever brings it: the results page marks it, as it
    # marks a browser's (on a poll without codes the results page ignores it).
    query = {"code": typed.code} if typed.code else {}
    if outcome is VoteOutcome.ALREADY_VOTED:
        query["already"] = "1"
    elif outcome is VoteOutcome.CHANGED:
        query["changed"] = "1"
    if query:
        results = results.with_query(query)
    # Returned, not raised: the hottest path in the app skips unwinding the middlewares.
    response = web.Response(status=302, headers={"Location": str(results)})
    set_voter_cookie(response, ballot)
    return response


async def remove_vote(request: web.Request) -> web.Response:
    """ "Remove my vote": take the browser's ballot back from an open poll, then to the results,
    which show the counts without it (POST-redirect-GET). A closed poll, or one whose votes
    are final (lock_votes), refuses with a 409 saying why."""
    question_id = poll_id(request)
    await forms.read_form(request)  # no fields; a body that is not a form is a 400 all the same
    outcome = await remove(request, question_id)
    if outcome is RemovalOutcome.NOT_FOUND:
        raise web.HTTPNotFound()
    if outcome is RemovalOutcome.CLOSED:
        raise web.HTTPConflict(text=REMOVAL_CLOSED)
    if outcome is RemovalOutcome.LOCKED:
        raise web.HTTPConflict(text=VOTES_FINAL)
    if outcome is RemovalOutcome.NO_BALLOT:
        await published_content(request, question_id)  # a 404 when there is no such poll
    notice = "removed" if outcome is RemovalOutcome.REMOVED else "unvoted"
    results = request.app.router["results"].url_for(question_id=str(question_id))
    raise web.HTTPSeeOther(results.with_query({notice: "1"}))


async def _refused(
    request: web.Request,
    question_id: int,
    form: MultiMapping[str],
    error: str = NO_CHOICE,
    status: int = 400,
) -> web.Response:
    """A ballot the poll does not take: an unknown poll is a 404, a closed one a 409, else the
    form again saying why (400; 403 for a voter code refused), with what was sent kept in it."""
    content = await published_content(request, question_id)
    if content.question.closed:  # whatever was sent: a closed poll shows no form to fix
        raise web.HTTPConflict(text=VOTING_CLOSED)
    pages = kinds.PAGES.get(content.question.kind)
    if pages is not None:  # its own form sends elsewhere: show it
        response = await pages.poll(request, content)
        response.set_status(400)
        return response
    question, choices = content
    typed = form.get("code")
    context = {
        "request": request,
        "question": question,
        "choices": choices,
        "error": error,
        "code_error": error != NO_CHOICE,  # the message is about the code field
        "picked": {v for v in form.getall("choice", []) if isinstance(v, str)},
        "code": typed[: codes.TYPED_MAX] if isinstance(typed, str) else "",
    }
    return aiohttp_jinja2.render_template("detail.html", request, context, status=status)


def _vote_unknown(request: web.Request, question_id: int, ballot: Cast) -> web.Response:
    """202: the vote may or may not be in. With the results this process last read, if it has
    them (the database is likely out of reach); a new voter gets the cookie, so that voting
    again counts once whatever happened."""
    content = site(request)[cache_key].peek(("content", question_id))
    if content is not None:
        response = _results_response(request, content.question, content.choices, VOTE_UNKNOWN, voted=False)
        response.set_status(202)
    else:
        context = {"request": request, "status": 202, "reason": VOTE_NOT_CONFIRMED, "message": VOTE_UNKNOWN}
        response = aiohttp_jinja2.render_template("error.html", request, context, status=202)
    set_voter_cookie(response, ballot)
    return response


async def results(request: web.Request) -> web.Response:
    """Votes per choice with percentages and bars; the reader's own choice is marked.

    From the cache for a reader who has no voter id and no notice to see, else read for them.
    """
    question_id = poll_id(request)
    notice = _notice(request)
    content = await published_content(request, question_id)
    pages = kinds.PAGES.get(content.question.kind)
    if pages is not None:
        return await pages.results(request, content, notice)
    code = _query_code(request)
    if code is not None and content.question.requires_code:  # the code's ballot, whoever brings it
        holder = code_voter(request, question_id, code)
        return await _voters_results(request, question_id, holder, notice, code)
    voter = voter_id(request)
    if voter is not None:
        return await _voters_results(request, question_id, voter, notice)
    if notice is not None:
        return _results_response(request, content.question, content.choices, notice, voted=False)

    async def render() -> tuple[bytes, float]:
        return _render_results(request, await published_content(request, question_id))

    return await cached_page(request, ("results", question_id), render)


def _notice(request: web.Request) -> str | None:
    """What the results page says after a vote that was not simply counted (?already=1, ?changed=1)."""
    if not request.query_string:  # nearly every request: skip parsing the query
        return None
    return next((text for key, text in VOTE_NOTICES.items() if request.query.get(key)), None)


def _render_results(request: web.Request, content: PollContent) -> tuple[bytes, float]:
    """The results page as every reader without a voter id sees it, and until when it holds."""
    question = content.question
    context = {
        "question": question,
        "choices": content.choices,
        "notice": None,
        "show_counts": rules.may_see_counts(question, voted=False, is_maker=False),
        "voted": False,
    }
    return render_page(request, "results.html", context), poll_expiry(question)


async def _voters_results(
    request: web.Request, question_id: int, voter: str, notice: str | None, code: str | None = None
) -> web.Response:
    """The results read for this voter (or voter code), counts included: their own vote, just
    committed, is on it even before this process hears of the change."""
    question, choices = await voters_poll(request, question_id, voter)
    return _results_response(
        request, question, choices, notice, voted=any(c.mine for c in choices), code=code
    )


def _results_response(
    request: web.Request,
    question: Any,
    choices: list,
    notice: str | None,
    voted: bool,
    code: str | None = None,
) -> web.Response:
    """A results page made for one reader; counts, total and bars are left out for a reader
    who may not see them yet (rules.may_see_counts)."""
    context = {
        "request": request,
        "question": question,
        "choices": choices,
        "notice": notice,
        "show_counts": rules.may_see_counts(question, voted=voted, is_maker=False),
        # This browser's own ballot: they may take it back. A voter code's ballot is not the
        # browser's (Remove my vote takes back the cookie's): the code changes it instead.
        "voted": voted and code is None,
        "code": code,  # the voter code whose ballot this is: the way back to voting keeps it
    }
    return aiohttp_jinja2.render_template("results.html", request, context)
