"""Request handlers: read the request, ask `db`, render a template."""

import re
import secrets
from datetime import datetime

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from . import db, forms
from .keys import config_key, engine_key

PAGE_SIZE = 20
VOTER_COOKIE = "polls_voter"
VOTER_COOKIE_MAX_AGE = 365 * 24 * 3600
NO_CHOICE = "You didn't select a choice."
ALREADY_VOTED = "You already voted in this poll."
VOTING_CLOSED = "Voting on this poll has closed; your vote was not counted."
_VOTER_ID = re.compile(r"[A-Za-z0-9_-]{24}")
_PAGE = re.compile(r"[1-9][0-9]{0,8}")
_ID = re.compile(r"[1-9][0-9]{0,9}")


def format_time(value: datetime | None) -> str:
    """Dates as people read them, in UTC so every visitor sees the same text."""
    return value.strftime("%-d %b %Y, %H:%M UTC") if value else ""


def _question_id(request: web.Request) -> int:
    # The route admits digits only; ids past PostgreSQL's integer range are simply unknown.
    return int(request.match_info["question_id"])


def _page(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not _PAGE.fullmatch(raw):
        raise web.HTTPNotFound()
    return int(raw)


async def _question_or_404(conn, question_id: int):
    question = await db.published_question(conn, question_id)
    if question is None:
        raise web.HTTPNotFound()
    return question


def _voter(request: web.Request) -> str | None:
    """The browser's voter id from its cookie, if it sent a well-formed one."""
    value = request.cookies.get(VOTER_COOKIE, "")
    return value if _VOTER_ID.fullmatch(value) else None


def _chosen_ids(form: MultiMapping[str], multiple: bool) -> list[int] | None:
    """Choice ids from the form, or None when they cannot be a valid ballot."""
    values = form.getall("choice", [])
    if not values or (len(values) > 1 and not multiple):
        return None
    if not all(isinstance(v, str) and _ID.fullmatch(v.strip()) for v in values):
        return None
    return [int(v) for v in values]


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict:
    """Published polls, newest first, a page at a time."""
    page = _page(request)
    async with request.app[engine_key].acquire() as conn:
        questions = await db.published_questions(conn, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    if not questions and page != 1:
        raise web.HTTPNotFound()
    total = questions[0].total if questions else 0
    return {"questions": questions, "page": page, "pages": max(1, -(-total // PAGE_SIZE))}


async def poll(request: web.Request) -> web.Response:
    """The voting form, or the results once voting has closed."""
    async with request.app[engine_key].acquire() as conn:
        question = await _question_or_404(conn, _question_id(request))
        choices = await db.choices(conn, question.id, _voter(request))
    template = "results.html" if question.closed else "detail.html"
    return aiohttp_jinja2.render_template(
        template, request, {"question": question, "choices": choices, "error": None, "notice": None}
    )


async def vote(request: web.Request) -> web.Response:
    """Count the browser's ballot, then redirect to the results (POST-redirect-GET)."""
    question_id = _question_id(request)
    form = await forms.read_form(request)
    voter = _voter(request)
    new_voter = voter is None
    if new_voter:
        voter = secrets.token_urlsafe(18)  # 144 random bits
    async with request.app[engine_key].acquire() as conn:
        question = await _question_or_404(conn, question_id)
        if question.closed:  # whatever was sent: a closed poll shows no form to fix
            raise web.HTTPConflict(text=VOTING_CLOSED)
        chosen = _chosen_ids(form, question.multiple)
        outcome = (
            db.VoteOutcome.INVALID_CHOICE
            if chosen is None
            else await db.cast_vote(conn, question_id, chosen, voter)
        )
        if outcome is db.VoteOutcome.INVALID_CHOICE:
            choices = await db.choices(conn, question_id)
            return aiohttp_jinja2.render_template(
                "detail.html",
                request,
                {"question": question, "choices": choices, "error": NO_CHOICE},
                status=400,
            )
    if outcome is db.VoteOutcome.CLOSED:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    results = request.app.router["results"].url_for(question_id=str(question_id))
    if outcome is db.VoteOutcome.ALREADY_VOTED:
        results = results.with_query(already="1")
    response = web.HTTPFound(results)
    if new_voter and outcome is db.VoteOutcome.COUNTED:
        response.set_cookie(
            VOTER_COOKIE,
            voter,
            max_age=VOTER_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.app[config_key]["https"],
        )
    raise response


@aiohttp_jinja2.template("results.html")
async def results(request: web.Request) -> dict:
    """Votes per choice with percentages and bars; the reader's own choice is marked."""
    async with request.app[engine_key].acquire() as conn:
        question = await _question_or_404(conn, _question_id(request))
        choices = await db.choices(conn, question.id, _voter(request))
    notice = ALREADY_VOTED if request.query.get("already") else None
    return {"question": question, "choices": choices, "notice": notice}
