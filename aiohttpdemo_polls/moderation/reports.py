"""Anyone's report of a poll: the form (a reason, an optional text), stored with its time,
then a thank-you page (POST-redirect-GET). Limited per client address (`limits.reports_per_hour`)."""

import unicodedata
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from ..store import connections, limits
from ..store import reports as store_reports
from ..store.schema import REPORT_REASONS, REPORT_TEXT_MAX
from ..web import clients
from ..web.config import config_key, site
from ..web.content import published_content
from ..web.database import engine_key
from ..web.forms import read_form
from ..web.i18n import N_
from ..web.request import poll_id

# What the form shows for each of schema.REPORT_REASONS.
REASONS = {
    "spam": N_("Spam or advertising"),
    "illegal": N_("Illegal content"),
    "harassment": N_("Harassment or hate"),
    "other": N_("Something else"),
}
assert tuple(REASONS) == REPORT_REASONS
REASON_REQUIRED = N_("Pick why you report this poll.")
TEXT_NOT_TEXT = N_("This field must be text.")
TEXT_CONTROL = N_("Remove the control character (such as a NUL byte) from this field.")
TOO_MANY = N_("You have sent too many reports in the last hour. Please try again later.")
# Line breaks and tabs belong in a text a person writes; other control characters do not.
_WRITTEN = frozenset("\n\t")


def text_too_long(length: int) -> str:
    return N_(
        "The text is too long: %(length)d characters, at most %(max)d.", length=length, max=REPORT_TEXT_MAX
    )


def check(form: MultiMapping) -> tuple[dict[str, str], dict[str, str]]:
    """The form's values as typed (reason, text) and what is wrong with each field."""
    reason, text = form.get("reason", ""), form.get("text", "")
    errors: dict[str, str] = {}
    if not isinstance(reason, str) or reason not in REASONS:
        errors["reason"], reason = REASON_REQUIRED, ""
    if not isinstance(text, str):  # an uploaded file
        errors["text"], text = TEXT_NOT_TEXT, ""
    # Browsers send a textarea's line breaks as CRLF, but count each as one character.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > REPORT_TEXT_MAX:
        errors["text"] = text_too_long(len(text))
    elif any(unicodedata.category(c) == "Cc" and c not in _WRITTEN for c in text):
        errors["text"] = TEXT_CONTROL
    return {"reason": reason, "text": text}, errors


def _render(
    request: web.Request, question: Any, values: dict, errors: dict, status: int = 200
) -> web.Response:
    context = {
        "request": request,
        "question": question,
        "reasons": REASONS,
        "values": values,
        "errors": errors,
        "text_max": REPORT_TEXT_MAX,
    }
    return aiohttp_jinja2.render_template("report.html", request, context, status=status)


async def report_form(request: web.Request) -> web.Response:
    """The form: why, and an optional text (404 for an unknown poll, 410 for a hidden one)."""
    content = await published_content(request, poll_id(request))
    return _render(request, content.question, {"reason": "", "text": ""}, {})


async def file_report(request: web.Request) -> web.Response:
    """Store the report, then the thank-you page; the form again (400) naming a wrong field."""
    question_id = poll_id(request)
    content = await published_content(request, question_id)
    values, errors = check(await read_form(request))
    if errors:
        return _render(request, content.question, values, errors, status=400)
    per_hour = site(request)[config_key]["limits"]["reports_per_hour"]
    try:
        async with connections.connection(site(request)[engine_key]) as conn:
            filed = await store_reports.file_report(
                conn, question_id, values["reason"], values["text"], clients.of_request(request), per_hour
            )
    except limits.TooMany as exc:
        raise web.HTTPTooManyRequests(text=TOO_MANY, headers={"Retry-After": str(exc.retry_after)}) from None
    if not filed:  # hidden or deleted since it was read
        raise web.HTTPNotFound()
    raise web.HTTPSeeOther(request.app.router["report_sent"].url_for(question_id=str(question_id)))


@aiohttp_jinja2.template("report_sent.html")
async def report_sent(request: web.Request) -> dict:
    """Thanks, and the way back to the poll."""
    return {"request": request, "question_id": poll_id(request)}
