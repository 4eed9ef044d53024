"""The JSON API: list and read polls, vote and take a vote back, make a poll. The same rules as
the pages: votes cast (and removed) as the form's (web/voting.py), new polls checked and made as
the maker's form's (maker/), errors as problem documents (problems.py), described by openapi.py.
"""

import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ..maker import creation
from ..maker.form import MAX_CHOICES, PollForm, check_new_poll, json_fields, json_names
from ..store import connections, polls, ranked, rules
from ..store.schema import KINDS
from ..store.votes import RemovalOutcome, VoteOutcome, ballot_choices
from ..web.cache import cache_key, expiry
from ..web.config import config_key, site
from ..web.content import poll_expiry, published_content, voters_poll
from ..web.database import engine_key
from ..web.links import absolute
from ..web.ranked import count_document, ranked_count
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
    cast,
    code_refusal,
    code_voter,
    possible_ballot,
    read_code,
    remove,
    set_voter_cookie,
    voter_id,
)
from . import dates as api_dates
from . import json_body, openapi
from .problems import Problem

JSON_TYPES = ("application/json",)
NOT_OBJECT = "The body must be a JSON object."
UNKNOWN_FIELD = "This field is not known here."
NOT_A_LIST_OF_IDS = "Give the ids of the chosen choices as a list of whole numbers."
NOT_A_RANKING = "Give the ranking as a list of choice ids, best first, each once."
EMPTY_RANKING = "Rank at least one choice."
NOT_RANKED_CHOICE = "One of these is not a choice of this poll."
RANK_THIS_POLL = "This poll is ranked: send `ranking`, the choice ids best first."
NOT_A_RANKED_POLL = "This poll is not ranked: send `choices`."
ONE_OF_VOTE = "Send either `choices` or `ranking`."
NOT_CHOICE = "One of these is not a choice of this poll, or the poll takes only one choice."
KEEP_MANAGE_LINK = "Keep the manage link: it is shown only this once; it closes, edits and deletes the poll."
BAD_PAGE = "The page must be a whole number from 1."
NEW_POLL_FIELDS = frozenset(
    {"question_text", "choices", "multiple", "closes_at", "results", "lock_votes", "creation_key", "kind"}
)

VOTE_FIELDS = frozenset({"choices", "ranking", "code"}) | api_dates.VOTE_FIELDS
NOT_DATE_ANSWERS = 'This poll finds a date: send "name" and "answers".'
UNKNOWN_KIND = "This must be one of: " + ", ".join(KINDS) + "."
DEFAULT_KIND = "choices"


def _check_choices(body: Mapping[str, Any]) -> PollForm:
    """A new question with choices: the JSON types, then the form's rules."""
    form, wrong_types = json_fields(body)
    if wrong_types:
        raise Problem(422, errors=wrong_types)
    return check_new_poll(form)


# The kinds of poll the API makes: kind -> (the body's fields, its check). A new kind adds its row.
NEW_POLL_KINDS: dict[str, tuple[frozenset[str], Callable[[Mapping[str, Any]], PollForm]]] = {
    DEFAULT_KIND: (NEW_POLL_FIELDS, _check_choices),
    "ranked": (NEW_POLL_FIELDS, _check_choices),
    api_dates.KIND: (api_dates.NEW_POLL_FIELDS, api_dates.check_new),
}

# Given whole: a Content-Type set through `content_type=` is parsed again on every response.
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
_OPENAPI_HEADERS = {"Content-Type": "application/json"}


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return web.Response(body=openapi.BODY, headers=_OPENAPI_HEADERS)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def read_object(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object; a clear 4xx for any other body (never a 500).

    413 past the size limit (aiohttp's `read` enforces `client_max_size`), 415 for a body
    that is not declared JSON, 400 for one json_body refuses, 422 for unknown fields.
    """
    if request.content_type not in JSON_TYPES:
        raise Problem(415)
    if request.content_length is not None and request.content_length > request.client_max_size:
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.client_max_size, actual_size=request.content_length
        )
    value = json_body.parse(await request.read())
    if not isinstance(value, dict):
        raise Problem(400, NOT_OBJECT)
    unknown = sorted(name for name in value if name not in allowed)
    if unknown:
        raise Problem(422, errors={name[:100]: UNKNOWN_FIELD for name in unknown[:10]})
    return value


def _poll_links(request: web.Request, question_id: int) -> dict[str, str]:
    ids = {"question_id": str(question_id)}
    api, site = request.app.router, _site(request).router
    return {
        "self": str(api["api_poll"].url_for(**ids)),
        "vote": str(api["api_vote"].url_for(**ids)),
        "page": str(site["poll"].url_for(**ids)),
        "results": str(site["results"].url_for(**ids)),
    }


def _site(request: web.Request) -> web.Application:
    """The application the API is nested in, whose routes are the pages'."""
    return request.match_info.apps[0]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


async def list_polls(request: web.Request) -> web.Response:
    """Published polls, newest first, a page at a time; `next` (and a Link header) leads on.

    Kept in the page cache like the index (the same for every caller, dropped on any change)."""
    page = page_number(request)
    if page is None:
        raise Problem(400, BAD_PAGE, errors={"page": BAD_PAGE})

    async def load() -> tuple[tuple[bytes, str | None], float]:
        async with connections.connection(site(request)[engine_key]) as conn:
            listed, total, upcoming = await polls.published_list(conn, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        pages = page_count(total)
        url = request.app.router["api_polls"].url_for()
        next_url = str(url.with_query(page=page + 1)) if page < pages else None
        body = {
            "polls": [
                {
                    "id": q.id,
                    "question_text": q.question_text,
                    "published_at": _iso(q.pub_date),
                    "closes_at": _iso(q.closes_at),
                    "closed": q.closed,
                    "kind": q.kind,
                    "links": _poll_links(request, q.id),
                }
                for q in listed
            ],
            "page": page,
            "pages": pages,
            "next": next_url,
        }
        closing = [q.closes_at for q in listed if not q.closed]
        return (json.dumps(body, ensure_ascii=False).encode(), next_url), expiry(upcoming, *closing)

    body, next_url = await site(request)[cache_key].get(("api_polls", None, page), load)
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
    return web.Response(body=body, headers={**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS)


def _counts_visible(question: Any, voted: bool) -> bool:
    """Whether this caller may see the counts: the poll's results setting, as on its pages."""
    return rules.may_see_counts(question, voted, is_maker=False)


async def poll(request: web.Request) -> web.Response:
    """The poll, its choices, the caller's own choices, and the counts where they may see them.

    A caller with no voter id gets the cached body (the same for all of them, like the page)."""
    question_id = poll_id(request)
    voter = voter_id(request)
    if voter is None:

        async def load() -> tuple[bytes, float]:
            # Read inside the load, as the pages do: one lookup on a hit, and content that
            # changed while the body was being made is never kept under the new state.
            question, choices = await published_content(request, question_id)
            return await _poll_body(request, question, choices), poll_expiry(question)

        body = await site(request)[cache_key].get(("api_poll", question_id), load)
    else:  # read for them: their own vote, just committed, is in it
        question, choices = await voters_poll(request, question_id, voter)
        body = await _poll_body(request, question, choices, voter)
    return web.Response(body=body, headers=_JSON_HEADERS)


async def _poll_body(request: web.Request, question: Any, choices: list, voter: str | None = None) -> bytes:
    mine = [c.id for c in choices if c.mine]
    dated = question.kind == api_dates.KIND
    more = await api_dates.extra(request, question, True, voter) if dated else {}
    visible = _counts_visible(question, voted=bool(mine) or more.get("answered", False))
    if dated and not visible:
        more["participants"] = []
    body: dict[str, Any] = {
        "id": question.id,
        "question_text": question.question_text,
        "published_at": _iso(question.pub_date),
        "closes_at": _iso(question.closes_at),
        "closed_at": _iso(question.closed_at),
        "closed": question.closed,
        "multiple": question.multiple,
        "kind": question.kind,
        "requires_code": question.requires_code,
        "counts_visible": visible,
        "choices": [
            {
                "id": c.id,
                "choice_text": c.choice_text,
                **({"votes": c.votes, "percent": c.percent} if visible else {}),
            }
            for c in choices
        ],
        "my_choices": mine,
        "links": _poll_links(request, question.id),
    }
    if dated:
        fields, options = api_dates.body_fields(question, choices, visible)
        body |= fields | {"participants": more["participants"], "my_answers": more["my_answers"]}
        for choice, option in zip(body["choices"], options, strict=True):
            choice |= option
    if visible:
        body["total"] = sum(c.votes for c in choices)
    if question.kind == "ranked":
        body["my_ranking"] = await _my_ranking(request, question.id, voter) if mine and voter else []
        if visible:
            body["count"] = count_document(await ranked_count(site(request), question.id))
    return json.dumps(body, ensure_ascii=False).encode()


async def _my_ranking(request: web.Request, question_id: int, voter: str) -> list[int]:
    async with connections.connection(site(request)[engine_key]) as conn:
        return await ranked.my_ranking(conn, question_id, voter)


def _ranking(body: Mapping[str, Any]) -> list[int]:
    ranking = body.get("ranking")
    if not isinstance(ranking, list) or not all(type(c) is int for c in ranking):
        raise Problem(422, errors={"ranking": NOT_A_RANKING})
    if not ranking:
        raise Problem(422, errors={"ranking": EMPTY_RANKING})
    if len(set(ranking)) != len(ranking):
        raise Problem(422, NOT_A_RANKING, errors={"ranking": NOT_A_RANKING})
    if len(ranking) > MAX_CHOICES or not possible_ballot(ranking):
        raise Problem(422, NOT_RANKED_CHOICE, errors={"ranking": NOT_RANKED_CHOICE})
    return ranking


def _chosen_ids(body: Mapping[str, Any]) -> list[int]:
    chosen = body.get("choices")
    if not isinstance(chosen, list) or not all(type(c) is int for c in chosen):
        raise Problem(422, errors={"choices": NOT_A_LIST_OF_IDS})
    if not chosen:
        raise Problem(422, errors={"choices": NO_CHOICE})
    if len(chosen) > MAX_CHOICES or not possible_ballot(chosen):
        raise Problem(422, errors={"choices": NOT_CHOICE})
    return chosen


# What the caller's ballot now is, for each outcome a vote that counted nothing new can have too.
_BALLOT_STATUS = {
    VoteOutcome.COUNTED: ("counted", "Your vote was counted."),
    VoteOutcome.CHANGED: ("changed", VOTE_CHANGED),
    VoteOutcome.ALREADY_VOTED: ("already_voted", ALREADY_VOTED),
    VoteOutcome.UNKNOWN: ("unknown", VOTE_UNKNOWN),
}


async def vote(request: web.Request) -> web.Response:
    """Cast the caller's ballot, as the voting form does; answer with their ballot. A poll
    that requires a voter code takes one in `code`: the ballot is then the code's."""
    question_id = poll_id(request)
    body = await read_object(request, VOTE_FIELDS)
    typed = read_code(body.get("code"))
    if typed.bad:
        raise Problem(422, errors={"code": CODE_SHAPE})
    if api_dates.VOTE_FIELDS & body.keys() and "choices" not in body and "ranking" not in body:
        # a date poll's answers
        ballot, answered = await api_dates.vote(request, question_id, body)
        status, message = _BALLOT_STATUS[ballot.outcome]
        answer = {
            "status": status,
            "message": message,
            **answered,
            "links": _poll_links(request, question_id),
        }
        response = _json(answer, status=202 if ballot.outcome is VoteOutcome.UNKNOWN else 200)
        set_voter_cookie(response, ballot)
        return response
    unknown = sorted(api_dates.VOTE_FIELDS & body.keys())
    if unknown:
        raise Problem(422, errors=dict.fromkeys(unknown, UNKNOWN_FIELD))
    is_ranking = "ranking" in body
    if is_ranking == ("choices" in body):
        raise Problem(422, ONE_OF_VOTE, errors={"choices": ONE_OF_VOTE, "ranking": ONE_OF_VOTE})
    chosen = _ranking(body) if is_ranking else _chosen_ids(body)
    ballot = await cast(request, question_id, chosen, ranked=is_ranking, code=typed.code)
    outcome = ballot.outcome
    refusal = code_refusal(outcome, typed.code)
    if refusal is not None:
        raise Problem(403, refusal, errors={"code": refusal})
    if outcome is VoteOutcome.INVALID_CHOICE:
        content = await published_content(request, question_id)  # 404 when there is no poll
        if content.question.kind == api_dates.KIND and not content.question.closed:
            raise Problem(422, NOT_DATE_ANSWERS, errors={"choices": NOT_DATE_ANSWERS})
        if not content.question.closed:
            raise _not_this_poll(content.question.kind == "ranked", is_ranking)
        outcome = VoteOutcome.CLOSED
    if outcome is VoteOutcome.CLOSED:
        raise Problem(409, VOTING_CLOSED)
    holder = ballot.voter  # whose ballot it is: the caller's, or their voter code's
    if (
        outcome is VoteOutcome.ALREADY_VOTED
        and typed.code is not None
        and (await published_content(request, question_id)).question.requires_code
    ):
        holder = code_voter(request, question_id, typed.code)
    if outcome is VoteOutcome.ALREADY_VOTED and is_ranking:
        mine = await _my_ranking(request, question_id, holder)
    elif outcome is VoteOutcome.ALREADY_VOTED:  # their earlier ballot, which may differ (lock_votes)
        _, choices = await voters_poll(request, question_id, holder)
        mine = [c.id for c in choices if c.mine]
    elif is_ranking:  # committed as asked
        mine = list(chosen)
    else:  # committed as asked: no read needed, which would take a pool connection per vote
        mine = ballot_choices(chosen)
    status, message = _BALLOT_STATUS[outcome]
    body = {
        "status": status,
        "message": message,
        "choices": mine,
        **({"ranking": mine} if is_ranking else {}),
        "links": _poll_links(request, question_id),
    }
    response = _json(body, status=202 if outcome is VoteOutcome.UNKNOWN else 200)
    set_voter_cookie(response, ballot)
    return response


def _not_this_poll(ranked_poll: bool, is_ranking: bool) -> Problem:
    """A 422 naming the field: a ballot of the other kind, or a choice the poll lacks."""
    if ranked_poll and not is_ranking:
        return Problem(422, RANK_THIS_POLL, errors={"choices": RANK_THIS_POLL})
    if is_ranking and not ranked_poll:
        return Problem(422, NOT_A_RANKED_POLL, errors={"ranking": NOT_A_RANKED_POLL})
    if is_ranking:
        return Problem(422, NOT_RANKED_CHOICE, errors={"ranking": NOT_RANKED_CHOICE})
    return Problem(422, NOT_CHOICE, errors={"choices": NOT_CHOICE})


async def remove_vote(request: web.Request) -> web.Response:
    """Take back the caller's ballot (their voter cookie's), as "Remove my vote" does."""
    question_id = poll_id(request)
    outcome = await remove(request, question_id)
    if outcome is RemovalOutcome.NOT_FOUND:
        raise Problem(404)
    if outcome is RemovalOutcome.NO_BALLOT:
        await published_content(request, question_id)  # 404 when there is no poll
        raise Problem(404, NO_VOTE_TO_REMOVE)
    if outcome is RemovalOutcome.CLOSED:
        raise Problem(409, REMOVAL_CLOSED)
    if outcome is RemovalOutcome.LOCKED:
        raise Problem(409, VOTES_FINAL)
    body = {
        "status": "removed",
        "message": VOTE_REMOVED,
        "choices": [],
        "links": _poll_links(request, question_id),
    }
    return _json(body)


async def create_poll(request: web.Request) -> web.Response:
    """Make a poll as the new-poll form does; answer 201 with its manage link (shown once)."""
    config = site(request)[config_key]
    creation.ensure_open(config)
    body = await read_object(request, NEW_POLL_FIELDS | api_dates.NEW_POLL_FIELDS)
    kind = body.get("kind", DEFAULT_KIND)
    if not isinstance(kind, str) or kind not in NEW_POLL_KINDS:
        raise Problem(422, errors={"kind": UNKNOWN_KIND})
    allowed, check = NEW_POLL_KINDS[kind]
    unknown = sorted(name for name in body if name not in allowed)
    if unknown:
        raise Problem(422, errors=dict.fromkeys(unknown, UNKNOWN_FIELD))
    refused = creation.key_problem(config, body.get("creation_key"))
    typed = check(body)
    if refused is not None:
        raise Problem(403, refused, errors={"creation_key": refused})
    if not typed.valid:
        raise Problem(422, errors=json_names(typed.errors))
    made = await creation.publish(request, typed)
    ids = {"question_id": str(made.question_id)}
    manage = _site(request).router["manage"].url_for(**ids, token=made.token)
    links = _poll_links(request, made.question_id)
    body = {
        "id": made.question_id,
        "manage_url": absolute(request, manage),
        "message": KEEP_MANAGE_LINK,
        "links": links,
    }
    # The token is in the body: no cache, shared or private, may keep it.
    return _json(body, status=201, headers={"Location": links["self"], "Cache-Control": "no-store"})
