"""The maker's private manage page: results, links, close, reopen, edit, delete, and voter
codes (whether a vote needs one; making them is maker/codes.py). A wrong token is the same
plain 404 as an unknown poll, so the page gives nothing away.
"""

import re
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from ..store import codes, connections, making, polls, tokens
from ..store import dates as stored_dates
from ..store.schema import PG_INT_MAX
from ..web import dates, i18n
from ..web.config import config_key, site
from ..web.content import shown
from ..web.database import changes_key, engine_key
from ..web.forms import read_form
from ..web.i18n import N_
from ..web.links import absolute
from ..web.ranked import count_context
from ..web.request import poll_id
from .form import PollForm, check_edit

NOTICES = {
    "closed": N_("Voting is closed. The results stay visible to everyone."),
    "reopened": N_("Voting is open again."),
    "edited": N_("Your changes are saved."),
    "codes_required": N_("From now on, a vote needs one of your voter codes."),
    "codes_not_required": N_("Anyone with the link can vote again, one vote per browser."),
    "settled": N_("The date is set and the poll is closed. Everyone now sees it, with a calendar file."),
}
NOT_AN_OPTION = N_("Pick one of this poll's options to settle on.")
ANSWER_WORDS = {"yes": N_("Yes"), "if_need_be": N_("If need be"), "no": N_("No")}
_ID = re.compile(r"[1-9][0-9]{0,9}")
HAS_VOTES = N_("People have already voted, so the texts can no longer be changed.")
UNKNOWN_ACTION = N_("That is not something the manage page can do.")
HIDDEN = N_("The site's operator hid this poll, so it can no longer be changed; you can still delete it.")


async def poll_or_404(request: web.Request, conn: Any) -> Any:
    """The poll this manage address names, when its token is right; else the plain 404.

    The exports (maker/exports.py) stand behind it too, so all the maker's addresses answer
    alike; they answer 410 for a poll the operator hid (`exportable`), as its public pages do."""
    poll = await making.managed_poll(conn, poll_id(request))
    if poll is None or not tokens.token_matches(request.match_info["token"], poll.token_hash):
        raise web.HTTPNotFound()
    return poll


async def exportable(request: web.Request, conn: Any) -> Any:
    """`poll_or_404`, and the 410 of every page of a poll the operator hid (content.shown)."""
    poll = await poll_or_404(request, conn)
    shown(poll)
    return poll


class Deletion(NamedTuple):
    """When retention (retention.closed_days) deletes the poll: `on` that day, or None while
    that depends on when voting closes."""

    days: int
    on: datetime | None


def deletion(poll: Any, closed_days: int) -> Deletion | None:
    """When the poll will be deleted; None when polls are kept (closed_days 0)."""
    if closed_days == 0:
        return None
    since = poll.closed_since if poll.closed else poll.closes_at
    return Deletion(closed_days, None if since is None else since + timedelta(days=closed_days))


def _manage_url(request: web.Request, poll: Any) -> URL:
    return request.app.router["manage"].url_for(question_id=str(poll.id), token=request.match_info["token"])


async def _render(
    request: web.Request,
    conn: Any,
    poll: Any,
    edit_form: PollForm | None = None,
    edit_error: str | None = None,
    status: int = 200,
    codes_form: dict | None = None,
) -> web.Response:
    choices = await polls.choices(conn, poll.id)
    extra = await KIND_CONTEXT[poll.kind](request, conn, poll, choices) if poll.kind in KIND_CONTEXT else {}
    if edit_form is None:
        edit_form = PollForm(question_text=poll.question_text, choices=[c.choice_text for c in choices])
    context = {
        "request": request,
        "question": poll,
        "choices": choices,
        "show_counts": True,  # the maker always sees them (rules.may_see_counts)
        # The live socket learns it is the maker's page from the same token.
        "live_query": {"token": request.match_info["token"]},
        "public_link": absolute(request, request.app.router["poll"].url_for(question_id=str(poll.id))),
        "private_link": absolute(request, _manage_url(request, poll)),
        "manage_url": _manage_url(request, poll),
        "notice": NOTICES.get(request.query.get("done", "")),
        "edit_form": edit_form,
        "edit_error": edit_error,
        **extra,
        "deletion": deletion(poll, site(request)[config_key]["retention"]["closed_days"]),
        "code_counts": await codes.counts(conn, poll.id),
        "codes_form": codes_form or {"count": "", "error": None},
        "max_codes": codes.MAX_CODES,
    }
    # Its address is the key to the poll: web/headers.py keeps it from caches and Referers.
    return aiohttp_jinja2.render_template("manage.html", request, context, status=status)


async def manage(request: web.Request) -> web.Response:
    """The poll's state, its links and results, and what its maker can do."""
    async with connections.connection(site(request)[engine_key]) as conn:
        return await _render(request, conn, await poll_or_404(request, conn))


async def manage_action(request: web.Request) -> web.Response:
    """One maker's action from the form's `action` field, then back to the page (303)."""
    form = await read_form(request)
    action = form.get("action")
    changes = site(request)[changes_key]
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await poll_or_404(request, conn)
        if poll.hidden and action != "delete":
            raise web.HTTPConflict(text=HIDDEN)
        if action == "close":
            await making.close_poll(conn, changes, poll.id)
            done = "closed"
        elif action == "reopen":
            await making.reopen_poll(conn, changes, poll.id)
            done = "reopened"
        elif action == "delete":
            if form.get("confirm") != "yes":
                return _confirm_delete(request, poll)
            await making.delete_poll(conn, changes, poll.id)
            raise web.HTTPSeeOther(request.app.router["poll_deleted"].url_for())
        elif action in ("require_code", "allow_without_code") and poll.kind != stored_dates.KIND:
            required = action == "require_code"
            await codes.require_code(conn, changes, poll.id, required)
            done = "codes_required" if required else "codes_not_required"
        elif action == "settle":
            await _settle(conn, changes, poll, form.get("option", ""))
            done = "settled"
        elif action == "edit" and poll.kind == "choices":  # a date poll's options are its times
            refused = await _edit(request, conn, poll, form)
            if refused is not None:
                return refused
            done = "edited"
        else:
            raise web.HTTPBadRequest(text=UNKNOWN_ACTION)
    raise web.HTTPSeeOther(_manage_url(request, poll).with_query(done=done))


async def _edit(request: web.Request, conn: Any, poll: Any, form: Any) -> web.Response | None:
    """Save new texts, or the page again saying why not (400 bad input, 409 votes exist)."""
    if poll.ballots:
        return await _render(request, conn, poll, edit_error=HAS_VOTES, status=409)
    count = len(await polls.choices(conn, poll.id))
    typed = check_edit(form, count)
    if not typed.valid:
        return await _render(request, conn, poll, edit_form=typed, status=400)
    texts = [c.strip() for c in typed.choices]
    outcome = await making.edit_poll(conn, site(request)[changes_key], poll.id, typed.question, texts)
    if outcome is making.EditOutcome.HAS_VOTES:
        poll = await poll_or_404(request, conn)
        return await _render(request, conn, poll, edit_error=HAS_VOTES, status=409)
    if outcome is making.EditOutcome.GONE:
        raise web.HTTPNotFound()
    return None


async def codes_refused(request: web.Request, conn: Any, poll: Any, typed: str, error: str) -> web.Response:
    """The page again (400) with the voter codes form as sent, saying why it was refused."""
    return await _render(request, conn, poll, status=400, codes_form={"count": typed[:20], "error": error})


async def _date_poll_context(request: web.Request, conn: Any, poll: Any, choices: list) -> dict[str, Any]:
    """A date poll's grid as its maker sees it: every row, names included."""
    rows = await stored_dates.participants(conn, poll.id)
    where = dates.shown_zone(request, poll)
    language = i18n.language(request)
    return {
        "columns": dates.columns(poll, choices, rows, where, language),
        "rows": dates.visible_rows(poll, rows, show_counts=True, is_maker=True),
        "words": ANSWER_WORDS,
        "zone": where,
        "zones": dates.zone_names(),
        "has_times": dates.has_times(choices),
        "settled": dates.settled_text(poll, choices, where, language),
        "is_maker": True,
    }


async def _ranked_context(request: web.Request, conn: Any, poll: Any, choices: list) -> dict[str, Any]:
    """A ranked poll's count round by round, as its results page shows it."""
    return await count_context(site(request), poll, choices, show_counts=True)


# What the manage page shows of polls of a kind of their own: kind -> more of its context.
KIND_CONTEXT = {stored_dates.KIND: _date_poll_context, "ranked": _ranked_context}


async def _settle(conn: Any, changes: Any, poll: Any, option: object) -> None:
    """The maker's final option (`option`, a choice id): recorded, the poll closed; a 400 for
    anything that is not one of this date poll's options."""
    if not isinstance(option, str) or not _ID.fullmatch(option) or int(option) > PG_INT_MAX:
        raise web.HTTPBadRequest(text=NOT_AN_OPTION)
    outcome = await stored_dates.settle(conn, changes, poll.id, int(option))
    if outcome is stored_dates.Settling.GONE:
        raise web.HTTPNotFound()
    if outcome is stored_dates.Settling.NOT_AN_OPTION:
        raise web.HTTPBadRequest(text=NOT_AN_OPTION)


def _confirm_delete(request: web.Request, poll: Any) -> web.Response:
    """The step before deleting: the same form again, with `confirm=yes`."""
    context = {"request": request, "question": poll, "manage_url": _manage_url(request, poll)}
    return aiohttp_jinja2.render_template("confirm_delete.html", request, context)


@aiohttp_jinja2.template("deleted.html")
async def poll_deleted(request: web.Request) -> dict:
    """Where the maker lands after deleting a poll."""
    return {"request": request}
