"""Making a poll in the browser: the new-poll form of each kind and its submission."""

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from ..web.config import config_key, site
from ..web.dates import zone_names
from ..web.forms import read_form
from ..web.i18n import N_
from . import creation, dates
from .form import PollForm, check_new_poll, with_another_choice


class Kind(NamedTuple):
    """One kind of poll the new-poll page offers: its name on the switch, its form."""

    label: str
    template: str
    blank: Callable[[], PollForm]
    check: Callable[[MultiMapping], PollForm]
    # The form's no-JavaScript buttons that add fields: the form again, or None for a submit.
    more: Callable[[MultiMapping], PollForm | None]


def _more_choices(form: MultiMapping) -> PollForm | None:
    return with_another_choice(form) if "add_choice" in form else None


def _more_days(form: MultiMapping) -> PollForm | None:
    if "add_day" in form or "copy_day" in form:
        return dates.with_another_day(form, copy_last="copy_day" in form)
    return None


# The kinds in the order the page offers them (the first is the default): a new kind adds its row.
# The one table of the kinds /poll/new makes (schema.KINDS): ranked polls share the choices' form.
KINDS: dict[str, Kind] = {
    "choices": Kind(N_("Voters pick a choice"), "new_poll.html", PollForm, check_new_poll, _more_choices),
    "ranked": Kind(
        N_("Voters rank the choices"),
        "new_poll.html",
        partial(PollForm, kind="ranked"),
        check_new_poll,
        _more_choices,
    ),
    dates.KIND: Kind(
        N_("Find a date"), "dates_new.html", dates.DatePollForm, dates.check_new_date_poll, _more_days
    ),
}
DEFAULT_KIND = next(iter(KINDS))


def render_form(
    request: web.Request, form: PollForm, status: int = 200, focus_last: bool = False
) -> web.Response:
    template = KINDS.get(form.kind, KINDS[DEFAULT_KIND]).template
    context = {
        "request": request,
        "form": form,
        "focus_last": focus_last,
        "needs_key": creation.needs_key(site(request)[config_key]),
        "kinds": {code: kind.label for code, kind in KINDS.items()},
        # The kinds sharing this form: its "What voters do" switch keeps what was typed.
        "form_kinds": {code: kind.label for code, kind in KINDS.items() if kind.template == template},
        "zones": zone_names(),
    }
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def new_poll(request: web.Request) -> web.Response:
    """The empty form of the kind asked for (?kind=dates; a 403 page where polls are not made
    through the site)."""
    creation.ensure_open(site(request)[config_key])
    kind = KINDS.get(request.query.get("kind", DEFAULT_KIND), KINDS[DEFAULT_KIND])
    return render_form(request, kind.blank())


async def create_poll(request: web.Request) -> web.Response:
    """Publish the poll and send its maker to the private manage page (303).

    The buttons that add fields ("Add another choice", "Add another day") submit the form too
    (they work without JavaScript): then the form comes back as typed, with more fields. A
    wrong creation key is the form again with a 403; past the hourly limit, a 429 page.
    """
    config = site(request)[config_key]
    creation.ensure_open(config)
    form = await read_form(request)
    # A kind no row names gets the choices' form, whose check says what is wrong (400).
    kind = KINDS.get(form.get("kind", DEFAULT_KIND), KINDS[DEFAULT_KIND])  # type: ignore[arg-type]
    more = kind.more(form)
    if more is not None:
        return render_form(request, more, focus_last=True)
    typed = kind.check(form)
    refused = creation.key_problem(config, form.get("creation_key"))
    if refused is not None:
        typed.errors["creation_key"] = refused
        return render_form(request, typed, status=403)
    if not typed.valid:
        return render_form(request, typed, status=400)
    made = await creation.publish(request, typed)
    raise web.HTTPSeeOther(
        request.app.router["manage"].url_for(question_id=str(made.question_id), token=made.token)
    )
