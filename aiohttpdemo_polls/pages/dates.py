"""A date poll's public pages: the grid (options as columns, participants as rows, the totals
and the best options) with the row to answer in, answering and removing one's row, and the
settled date as a calendar file. The same vote flow as every poll (web/voting.py).
"""

import re
from datetime import UTC, timedelta
from typing import Any

import aiohttp_jinja2
import icalendar
from aiohttp import web
from multidict import MultiMapping

from ..store import connections, rules
from ..store import dates as stored
from ..store.schema import NAME_MAX
from ..store.votes import RemovalOutcome, VoteOutcome
from ..web import dates, forms, i18n, links
from ..web.config import site
from ..web.content import PollContent, cached_page, poll_expiry, published_content, render_page
from ..web.database import engine_key
from ..web.i18n import N_
from ..web.request import poll_id
from ..web.voting import VOTE_UNKNOWN, VOTING_CLOSED, cast, remove, set_voter_cookie, voter_id

KIND = stored.KIND
ANSWER_WORDS = {"yes": N_("Yes"), "if_need_be": N_("If need be"), "no": N_("No")}
NAME_REQUIRED = N_("Write your name.")
NAME_TOO_LONG = N_("Your name is too long: at most %(max)d characters.", max=NAME_MAX)
NAME_CONTROL = N_("Remove the control character (such as a NUL byte or a tab) from your name.")
ANSWER_MISSING = N_("Answer this option: yes, if need be, or no.")
ANSWER_UNKNOWN = N_("Pick yes, if need be, or no.")
NOT_ANSWERED = N_("Your answers were not saved: the poll's options changed. Please answer again.")
NOT_CONFIRMED = N_("Answers not confirmed")
ANSWERS_LOCKED = N_("Answers in this poll cannot be changed or removed.")
# The grid's ?done= after answering.
NOTICES = {
    "saved": N_("Your answers are saved."),
    "changed": N_("Your answers were changed."),
    "same": N_("Your answers were already saved."),
    "removed": N_("Your row was removed."),
}
_DONE = {VoteOutcome.COUNTED: "saved", VoteOutcome.CHANGED: "changed", VoteOutcome.ALREADY_VOTED: "same"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


async def grid(request: web.Request, content: PollContent) -> web.Response:
    """The grid and, while the poll is open, the row to answer in. Read for a browser that has a
    voter id (its own row is in the form) or a notice to see; else cached for every reader, per
    zone picked."""
    question_id = content.question.id
    voter = voter_id(request)
    notice = NOTICES.get(request.query.get("done", ""))
    if voter is not None or notice is not None:
        context = await _context(request, question_id, voter, notice=notice)
        return aiohttp_jinja2.render_template("dates_poll.html", request, context)

    async def render() -> tuple[bytes, float]:
        context = await _context(request, question_id, None)
        return render_page(request, "dates_poll.html", context), poll_expiry(context["question"])

    picked = dates.shown_zone(request, content.question)
    key = ("dates", question_id, picked.name if picked.picked else None)
    return await cached_page(request, key, render)


async def results(request: web.Request, content: PollContent, notice: str | None) -> web.Response:
    """The results page is the grid too (its notices come with ?done=)."""
    return await grid(request, content)


async def _context(
    request: web.Request,
    question_id: int,
    voter: str | None,
    typed: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """What dates_poll.html shows this reader; `typed` and `errors`: a form sent back to fix."""
    question, choices = await published_content(request, question_id)
    async with connections.connection(site(request)[engine_key]) as conn:
        rows = await stored.participants(conn, question_id, voter)
    mine = next((r for r in rows if r.mine), None)
    show_counts = rules.may_see_counts(question, voted=mine is not None, is_maker=False)
    where = dates.shown_zone(request, question)
    language = i18n.language(request)
    if typed is None:
        typed = {"name": mine.name if mine else "", "answers": dict(mine.answers) if mine else {}}
    return {
        "request": request,
        "question": question,
        "columns": dates.columns(question, choices, rows, where, language),
        "rows": dates.visible_rows(question, rows, show_counts, is_maker=False),
        "show_counts": show_counts,
        "mine": mine,
        "typed": typed,
        "errors": errors or {},
        "notice": notice,
        "zone": where,
        "zones": dates.zone_names(),
        "has_times": dates.has_times(choices),
        "settled": dates.settled_text(question, choices, where, language),
        "words": ANSWER_WORDS,
    }


async def present_context(request: web.Request, question: Any, choices: list) -> dict[str, Any]:
    """A date poll on the presenter view: the totals per option, no one's name."""
    async with connections.connection(site(request)[engine_key]) as conn:
        rows = await stored.participants(conn, question.id)
    # The poll's own zone, never a ?tz= (the view is cached once for every reader); dates.js
    # shows the projector's own zone.
    own = question.timezone or "UTC"
    where = dates.Shown(own, dates.zone(own) or dates.zone("UTC"), picked=False)
    return {
        "columns": dates.columns(question, choices, rows, where, i18n.language(request)),
        "rows": [],
        "words": ANSWER_WORDS,
        "participants": len(rows),
        "zone": where,
        "zones": dates.zone_names(),
        "has_times": dates.has_times(choices),
    }


def _read_answers(form: MultiMapping, choices: list) -> tuple[dict[str, Any], dict[str, str]]:
    """The name and an answer per option as typed, and a message per wrong field."""
    errors: dict[str, str] = {}
    raw_name = form.get("name", "")
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    if _CONTROL.search(name):
        errors["name"] = NAME_CONTROL
    elif not name:
        errors["name"] = NAME_REQUIRED
    elif len(name) > NAME_MAX:
        errors["name"] = NAME_TOO_LONG
    answers: dict[int, str] = {}
    for c in choices:
        given = form.get(f"answer-{c.id}")
        if given is None or given == "":
            errors[f"answer-{c.id}"] = ANSWER_MISSING
        elif given not in stored.ANSWERS:
            errors[f"answer-{c.id}"] = ANSWER_UNKNOWN
        else:
            answers[c.id] = given
    shown = _CONTROL.sub("\ufffd", name)
    return {"name": shown, "answers": answers}, errors


async def answer(request: web.Request) -> web.Response:
    """Save the browser's row (a name and an answer to every option), or remove it (`remove`);
    then back to the grid (303). A form with wrong fields comes back as typed (400)."""
    question_id = poll_id(request)
    form = await forms.read_form(request)
    content = await published_content(request, question_id)
    if content.question.kind != stored.KIND:
        raise web.HTTPNotFound()
    if content.question.closed:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    if "remove" in form:
        return await _remove(request, question_id)
    typed, errors = _read_answers(form, content.choices)
    voter = voter_id(request)
    if errors:
        return await _again(request, question_id, voter, typed, errors)
    ballot = await cast(request, question_id, [], answers=typed["answers"], name=typed["name"])
    if ballot.outcome is VoteOutcome.CLOSED:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    if ballot.outcome is VoteOutcome.INVALID_CHOICE:  # the options changed under the page
        return await _again(request, question_id, voter, typed, {"answers": NOT_ANSWERED})
    if ballot.outcome is VoteOutcome.UNKNOWN:
        context = {"request": request, "status": 202, "reason": NOT_CONFIRMED, "message": VOTE_UNKNOWN}
        response = aiohttp_jinja2.render_template("error.html", request, context, status=202)
    else:
        done = _DONE[ballot.outcome]
        response = web.Response(status=303, headers={"Location": str(_grid_url(request, question_id, done))})
    set_voter_cookie(response, ballot)
    return response


async def _again(
    request: web.Request, question_id: int, voter: str | None, typed: dict, errors: dict[str, str]
) -> web.Response:
    context = await _context(request, question_id, voter, typed, errors)
    return aiohttp_jinja2.render_template("dates_poll.html", request, context, status=400)


async def _remove(request: web.Request, question_id: int) -> web.Response:
    """Take the browser's row out: the one removal every poll has ("Remove my vote",
    VoteBatcher.remove), which lowers the yes and if-need-be counters with it."""
    outcome = await remove(request, question_id)
    if outcome is RemovalOutcome.NOT_FOUND:
        raise web.HTTPNotFound()
    if outcome is RemovalOutcome.CLOSED:
        raise web.HTTPConflict(text=VOTING_CLOSED)
    if outcome is RemovalOutcome.LOCKED:
        raise web.HTTPConflict(text=ANSWERS_LOCKED)
    raise web.HTTPSeeOther(_grid_url(request, question_id, "removed"))


def _grid_url(request: web.Request, question_id: int, done: str) -> Any:
    return request.app.router["poll"].url_for(question_id=str(question_id)).with_query(done=done)


async def event_ics(request: web.Request) -> web.Response:
    """The settled option as an RFC 5545 calendar file; a 404 until the maker settles."""
    question_id = poll_id(request)
    question, choices = await published_content(request, question_id)
    chosen = next((c for c in choices if c.id == question.settled_choice_id), None)
    if question.kind != stored.KIND or chosen is None:
        raise web.HTTPNotFound()
    link = links.absolute(request, request.app.router["poll"].url_for(question_id=str(question_id)))
    body = calendar_file(question, chosen, link, request.host)
    response = web.Response(body=body, content_type="text/calendar", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="poll-{question_id}.ics"'
    return response


def calendar_file(question: Any, chosen: Any, link: str, host: str) -> bytes:
    """One event: a UID stable for the poll, the question as its summary, the poll's link, and
    its start and end in UTC (a whole day: VALUE=DATE, ending the next day)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//aiohttpdemo_polls//Find a date//EN")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", f"poll-{question.id}@{host.split(':')[0] or 'polls'}")
    event.add("dtstamp", question.closed_at or question.pub_date)
    event.add("summary", question.question_text)
    event.add("url", link)
    event.add("description", link)
    if chosen.starts_at is not None:
        event.add("dtstart", chosen.starts_at.astimezone(UTC))
        event.add("dtend", chosen.ends_at.astimezone(UTC))
    else:
        event.add("dtstart", chosen.day)
        event.add("dtend", chosen.day + timedelta(days=1))
    calendar.add_component(event)
    return calendar.to_ical()
