"""The operator's /admin: sign-in with the password `set-admin-password` set, the moderation
page (reported polls first, hidden ones, a search), hide, restore and delete, the audit log.
Every address is private (no cache, no Referer, noindex) and every form behind web/checks.py."""

import unicodedata

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from ..store import admin, connections, limits
from ..store import reports as store_reports
from ..web import clients
from ..web.config import config_key, site
from ..web.database import changes_key, engine_key
from ..web.forms import read_form
from ..web.i18n import N_
from ..web.request import PAGE_SIZE, page_count, page_number, poll_id
from . import passwords, sessions
from .reports import REASONS

SEARCH_MAX = 200
PASSWORD_REQUIRED = N_("Enter the password.")
WRONG_PASSWORD = N_("That password is not right.")
TOO_MANY_FAILURES = N_("Too many failed sign-ins from your address. Please try again in a few minutes.")
SIGN_IN_FIRST = N_("Your session has ended or is not known here. Sign in again.")
SEARCH_TOO_LONG = N_("The search is too long: at most 200 characters.")
UNKNOWN_ACTION = N_("Pick hide, restore or delete.")
REASON_REQUIRED = N_("Write why you take this action: it goes in the audit log.")
REASON_TOO_LONG = N_("The reason is too long: at most 500 characters.")
REASON_CONTROL = N_("Remove the control character (such as a NUL byte or a tab) from this field.")
# The moderation page's ?done= after an action.
NOTICES = {
    "hide": N_("The poll is hidden: its pages say the site's operator removed it."),
    "restore": N_("The poll is shown again."),
    "delete": N_("The poll was deleted with its ballots, votes and reports."),
    "unchanged": N_("Nothing changed: the poll was already so."),
}
ACTIONS = {"hide": admin.hide, "restore": admin.restore, "delete": admin.delete}
# What the audit log shows for each of schema.AUDIT_ACTIONS.
LOGGED = {
    "sign_in": N_("Signed in"),
    "sign_in_failed": N_("Failed sign-in"),
    "sign_out": N_("Signed out"),
    "hide": N_("Hid a poll"),
    "restore": N_("Restored a poll"),
    "delete": N_("Deleted a poll"),
    "password_set": N_("Password set"),
}


def _secure(request: web.Request) -> bool:
    return bool(site(request)[config_key]["https"])


def _render(request: web.Request, template: str, context: dict, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {"request": request, **context}, status=status)


def _admin_url(request: web.Request, **query: str) -> URL:
    return request.app.router["admin"].url_for().with_query({k: v for k, v in query.items() if v})


def _see_admin(request: web.Request) -> web.Response:
    """A 303 to /admin that can carry a cookie."""
    return web.Response(status=303, headers={"Location": str(_admin_url(request))})


async def admin_page(request: web.Request) -> web.Response:
    """How to set a password when none is; the sign-in form; else the moderation page."""
    search = request.query.get("q", "").strip()
    if len(search) > SEARCH_MAX:
        raise web.HTTPBadRequest(text=SEARCH_TOO_LONG)
    async with connections.connection(site(request)[engine_key]) as conn:
        if not await admin.password_is_set(conn):
            return _render(request, "admin_setup.html", {})
        if not await sessions.signed_in(request, conn):
            return _render(request, "admin_sign_in.html", {"errors": {}})
        reported = await admin.reported(conn)
        hidden = await admin.hidden(conn)
        found = await admin.search(conn, search) if search else []
        ids = sorted({p.id for p in (*reported, *hidden, *found) if p.reports})
        reports = await store_reports.reports_of(conn, ids)
    context = {
        "reported": reported,
        "hidden": hidden,
        "search": search,
        "found": found,
        "reports": reports,
        "reasons": REASONS,
        "notice": NOTICES.get(request.query.get("done", "")),
    }
    return _render(request, "admin.html", context)


async def sign_in(request: web.Request) -> web.Response:
    """Check the password; a session and its cookie, or the form again (400 empty, 403 wrong).
    Failures are limited per client address (429 past store.admin.SIGN_IN_FAILURES)."""
    given = (await read_form(request)).get("password", "")
    if not isinstance(given, str) or not given:
        return _render(request, "admin_sign_in.html", {"errors": {"password": PASSWORD_REQUIRED}}, 400)
    token, token_hash = sessions.new_token()

    async def matches(stored: str) -> bool:
        return await passwords.matches(stored, given)

    try:
        async with connections.connection(site(request)[engine_key]) as conn:
            outcome = await admin.sign_in(conn, clients.of_request(request), token_hash, matches)
    except limits.TooMany as exc:
        raise web.HTTPTooManyRequests(
            text=TOO_MANY_FAILURES, headers={"Retry-After": str(exc.retry_after)}
        ) from None
    if outcome is admin.SignIn.WRONG:
        return _render(request, "admin_sign_in.html", {"errors": {"password": WRONG_PASSWORD}}, 403)
    response = _see_admin(request)
    if outcome is admin.SignIn.SIGNED_IN:
        sessions.give_cookie(response, token, _secure(request))
    return response  # NO_PASSWORD: /admin says how to set one


async def sign_out(request: web.Request) -> web.Response:
    """End the session at once: its cookie, if kept or stolen, opens nothing after this."""
    await read_form(request)  # nothing in it matters, but a body no form can be is refused as anywhere
    token_hash = sessions.token_hash(request)
    if token_hash is not None:
        async with connections.connection(site(request)[engine_key]) as conn:
            await admin.sign_out(conn, token_hash)
    response = _see_admin(request)
    sessions.take_cookie(response, _secure(request))
    return response


def _check_action(form: MultiMapping) -> tuple[str, str, dict[str, str]]:
    """The action and reason of an action form, and what is wrong with each field."""
    action, reason = form.get("action", ""), form.get("reason", "")
    errors = {}
    if not isinstance(action, str) or action not in ACTIONS:
        errors["action"], action = UNKNOWN_ACTION, ""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        errors["reason"] = REASON_REQUIRED
    elif len(reason) > admin.REASON_MAX:
        errors["reason"] = REASON_TOO_LONG
    elif any(unicodedata.category(c) == "Cc" for c in reason):
        errors["reason"] = REASON_CONTROL
    return action, reason, errors


async def poll_action(request: web.Request) -> web.Response:
    """Hide, restore or delete a poll (delete asks once more), logged with its reason; back to
    the moderation page (303). Refused (403) without a live session."""
    question_id = poll_id(request)
    form = await read_form(request)
    search = form.get("q", "")
    search = search.strip()[:SEARCH_MAX] if isinstance(search, str) else ""
    async with connections.connection(site(request)[engine_key]) as conn:
        if not await sessions.signed_in(request, conn):
            raise web.HTTPForbidden(text=SIGN_IN_FIRST)
        poll = await admin.moderated_poll(conn, question_id)
        if poll is None:
            raise web.HTTPNotFound()
        action, reason, errors = _check_action(form)
        if errors:
            context = {"poll": poll, "action": action, "reason": reason, "search": search, "errors": errors}
            return _render(request, "admin_action.html", context, status=400)
        if action == "delete" and form.get("confirm") != "yes":
            context = {"poll": poll, "action": action, "reason": reason, "search": search, "errors": {}}
            return _render(request, "admin_action.html", context)
        done = await ACTIONS[action](conn, site(request)[changes_key], question_id, reason)
    raise web.HTTPSeeOther(_admin_url(request, done=action if done else "unchanged", q=search))


async def audit_log(request: web.Request) -> web.Response:
    """The audit log, newest first, a page at a time; the sign-in page's address without a session."""
    page = page_number(request)
    if page is None:
        raise web.HTTPNotFound()
    async with connections.connection(site(request)[engine_key]) as conn:
        if not await sessions.signed_in(request, conn):
            raise web.HTTPSeeOther(_admin_url(request))
        entries, total = await admin.log_page(conn, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    if not entries and page != 1:
        raise web.HTTPNotFound()
    return _render(
        request,
        "admin_log.html",
        {"entries": entries, "actions": LOGGED, "page": page, "pages": page_count(total)},
    )
