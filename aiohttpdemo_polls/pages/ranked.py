"""The pages of a ranked poll: the ranking form (a rank select beside each choice, which
static/ranked.js turns into move-up and move-down buttons), the count round by round with
the head-to-head table, and the presenter view. Read the request, ask the cache, render.
"""

from typing import Any, NamedTuple

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from ..store import connections, ranked, rules
from ..store.votes import VoteOutcome
from ..web import forms, links
from ..web.config import site
from ..web.content import (
    PollContent,
    cached_page,
    may_see_counts,
    poll_expiry,
    published_content,
    render_page,
)
from ..web.database import engine_key
from ..web.i18n import N_
from ..web.ranked import count_context
from ..web.request import poll_id
from ..web.voting import (
    VOTE_UNKNOWN,
    VOTING_CLOSED,
    cast,
    set_voter_cookie,
    voter_id,
)
from . import qr

NONE_RANKED = N_("Rank at least one choice: give your favourite the 1st place.")
SAME_RANK = N_("Two choices share place %(place)s: give each ranked choice a place of its own.")
GAP = N_("Place %(place)s is missing: number your ranked choices 1, 2, 3… without leaving a place out.")
NOT_A_RANK = N_("A place must be a number from 1 to the number of choices, or “not ranked”.")
NOT_THIS_POLL = N_("That ranking names a choice this poll does not have. Please rank again.")
RANK_FIELD = "rank-"  # a select per choice: rank-<choice id>, its place or "" (not ranked)


class Ranking(NamedTuple):
    """A ranking read from the form: choice ids best first, or why it cannot be one."""

    choice_ids: list[int]
    error: str | None
    places: dict[int, int]  # choice id -> place as sent, to show the form again as it was


def read_ranking(form: MultiMapping[str], choice_ids: list[int]) -> Ranking:
    """The ranking the form's selects give; every rule of a ranking has its own message."""
    places: dict[int, int] = {}
    error = None
    known = {str(c): c for c in choice_ids}
    for name, value in form.items():
        if not name.startswith(RANK_FIELD):
            continue
        choice = known.get(name[len(RANK_FIELD) :])
        if choice is None:
            error = NOT_THIS_POLL
            continue
        value = value.strip() if isinstance(value, str) else "?"
        if not value:
            continue
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= len(choice_ids):
            error = error or NOT_A_RANK
            continue
        places[choice] = int(value)
    if error is None:
        error = _ranking_problem(sorted(places.values()))
    ranking = sorted(places, key=places.__getitem__)
    return Ranking(ranking if error is None else [], error, places)


def _ranking_problem(places: list[int]) -> str | None:
    if not places:
        return NONE_RANKED
    for expected, (place, after) in enumerate(zip(places, [*places[1:], None], strict=True), 1):
        if place == after:
            return N_(SAME_RANK, place=place)
        if place != expected:
            return N_(GAP, place=expected)
    return None


async def poll(request: web.Request, content: PollContent) -> web.Response:
    """The ranking form; a browser that has voted gets its ranking filled in (read for it).
    Once voting has closed, the count."""
    question_id = content.question.id
    if content.question.closed:
        return await results(request, content, None)
    voter = voter_id(request)
    if voter is not None:
        mine = await _my_ranking(request, question_id, voter)
        if mine:
            return _form(request, content, {c: i for i, c in enumerate(mine, 1)}, voted=True)

    async def render() -> tuple[bytes, float]:
        fresh = await published_content(request, question_id)
        context = _form_context(fresh, {}, None, voted=False)
        return render_page(request, "ranked_detail.html", context), poll_expiry(fresh.question)

    return await cached_page(request, ("poll", question_id), render)


def _form_context(content: PollContent, places: dict[int, int], error: str | None, voted: bool) -> dict:
    return {
        "question": content.question,
        "choices": content.choices,
        "places": places,
        "error": error,
        "voted": voted,
        "locked": voted and content.question.lock_votes,
    }


def _form(
    request: web.Request,
    content: PollContent,
    places: dict[int, int],
    voted: bool,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    context = {"request": request, **_form_context(content, places, error, voted)}
    return aiohttp_jinja2.render_template("ranked_detail.html", request, context, status=status)


async def _my_ranking(request: web.Request, question_id: int, voter: str) -> list[int]:
    async with connections.connection(site(request)[engine_key]) as conn:
        return await ranked.my_ranking(conn, question_id, voter)


async def rank(request: web.Request) -> web.Response:
    """Count the browser's ranking, then redirect to the count (POST-redirect-GET); a ranking
    that breaks a rule is the form again, as sent, saying what to fix (400)."""
    question_id = poll_id(request)
    form = await forms.read_form(request)
    content = await published_content(request, question_id)
    if content.question.closed:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    if content.question.kind != "ranked":  # another kind's poll: its own form votes
        raise web.HTTPNotFound()
    ranking = read_ranking(form, [c.id for c in content.choices])
    if ranking.error is not None:
        return _form(request, content, ranking.places, voted=False, error=ranking.error, status=400)
    ballot = await cast(request, question_id, ranking.choice_ids, ranked=True)
    outcome = ballot.outcome
    if outcome is VoteOutcome.CLOSED:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    if outcome is VoteOutcome.INVALID_CHOICE:  # its choices changed since the page was read
        return _form(request, content, ranking.places, voted=False, error=NOT_THIS_POLL, status=400)
    if outcome is VoteOutcome.UNKNOWN:
        context = {
            "request": request,
            "status": 202,
            "reason": N_("Vote not confirmed"),
            "message": VOTE_UNKNOWN,
        }
        response = aiohttp_jinja2.render_template("error.html", request, context, status=202)
        set_voter_cookie(response, ballot)
        return response
    target = request.app.router["results"].url_for(question_id=str(question_id))
    if outcome is VoteOutcome.ALREADY_VOTED:
        target = target.with_query(already="1")
    elif outcome is VoteOutcome.CHANGED:
        target = target.with_query(changed="1")
    response = web.Response(status=302, headers={"Location": str(target)})
    set_voter_cookie(response, ballot)
    return response


async def results(request: web.Request, content: PollContent, notice: str | None) -> web.Response:
    """The count round by round and head to head, where this reader may see it; cached for
    readers without a voter id, read for a voter (their ranking is on it)."""
    question = content.question
    voter = voter_id(request)
    if voter is None and notice is None:

        async def render() -> tuple[bytes, float]:
            fresh = await published_content(request, question.id)
            show = rules.may_see_counts(fresh.question, voted=False, is_maker=False)
            context = await _results_context(request, fresh, show, mine=[], notice=None)
            return render_page(request, "ranked_results.html", context), poll_expiry(fresh.question)

        return await cached_page(request, ("results", question.id), render)
    mine = [] if voter is None else await _my_ranking(request, question.id, voter)
    show = rules.may_see_counts(question, voted=bool(mine), is_maker=False)
    context = await _results_context(request, content, show, mine, notice)
    return aiohttp_jinja2.render_template("ranked_results.html", request, {"request": request, **context})


async def _results_context(
    request: web.Request, content: PollContent, show: bool, mine: list[int], notice: str | None
) -> dict[str, Any]:
    texts = {c.id: c.choice_text for c in content.choices}
    return {
        **await count_context(site(request), content.question, content.choices, show),
        "notice": notice,
        "my_ranking": [texts[c] for c in mine if c in texts],
    }


async def present(request: web.Request, content: PollContent) -> web.Response:
    """The presenter view: the current leader and the last round, with the poll's QR code."""
    question_id = content.question.id
    show_counts = await may_see_counts(request, content.question)

    async def render() -> tuple[bytes, float]:
        fresh = await published_content(request, question_id)
        public_link = links.absolute(
            request, request.app.router["poll"].url_for(question_id=str(question_id))
        )
        context = {
            **await count_context(site(request), fresh.question, fresh.choices, show_counts),
            "public_link": public_link,
            "short_link": links.short(public_link),
            "qr_code": qr.svg(public_link),
        }
        return render_page(request, "ranked_present.html", context), poll_expiry(fresh.question)

    return await cached_page(request, ("present", question_id, show_counts), render)
