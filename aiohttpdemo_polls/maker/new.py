"""Making a poll in the browser: the new-poll form and its submission."""

import aiohttp_jinja2
from aiohttp import web

from ..web.config import config_key, site
from ..web.forms import read_form
from . import creation
from .form import NEW_KINDS, PollForm, check_new_poll, with_another_choice


def render_form(
    request: web.Request, form: PollForm, status: int = 200, focus_last: bool = False
) -> web.Response:
    context = {
        "request": request,
        "form": form,
        "focus_last": focus_last,
        "new_kinds": NEW_KINDS,
        "needs_key": creation.needs_key(site(request)[config_key]),
    }
    return aiohttp_jinja2.render_template("new_poll.html", request, context, status=status)


async def new_poll(request: web.Request) -> web.Response:
    """The empty form (a 403 page where polls are not made through the site)."""
    creation.ensure_open(site(request)[config_key])
    return render_form(request, PollForm())


async def create_poll(request: web.Request) -> web.Response:
    """Publish the poll and send its maker to the private manage page (303).

    The "Add another choice" button submits the form too (it works without JavaScript):
    then the form comes back as typed, with one more choice field. A wrong creation key is
    the form again with a 403; past the hourly limit, a 429 page.
    """
    config = site(request)[config_key]
    creation.ensure_open(config)
    form = await read_form(request)
    if "add_choice" in form:
        return render_form(request, with_another_choice(form), focus_last=True)
    typed = check_new_poll(form)
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
