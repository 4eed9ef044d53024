"""Making a poll in the browser: the new-poll form and its submission."""

import aiohttp_jinja2
from aiohttp import web

from . import db_manage, forms, tokens
from .keys import engine_key, notices_key


def render_form(
    request: web.Request, form: forms.PollForm, status: int = 200, focus_last: bool = False
) -> web.Response:
    context = {"request": request, "form": form, "focus_last": focus_last}
    return aiohttp_jinja2.render_template("new_poll.html", request, context, status=status)


async def new_poll(request: web.Request) -> web.Response:
    """The empty form."""
    return render_form(request, forms.PollForm())


async def create_poll(request: web.Request) -> web.Response:
    """Publish the poll and send its maker to the private manage page (303).

    The "Add another choice" button submits the form too (it works without JavaScript):
    then the form comes back as typed, with one more choice field.
    """
    form = await forms.read_form(request)
    if "add_choice" in form:
        return render_form(request, forms.with_another_choice(form), focus_last=True)
    typed = forms.check_new_poll(form)
    if not typed.valid:
        return render_form(request, typed, status=400)
    token, token_hash = tokens.new_token()
    async with request.app[engine_key].acquire() as conn:
        question_id = await db_manage.create_poll(
            conn,
            typed.question,
            typed.choice_texts,
            typed.multiple,
            typed.closes_at_utc,
            token_hash,
            results=typed.results,
            lock_votes=typed.lock_votes,
        )
    # Committed: this process's index lists it at once, without waiting for the notice.
    request.app[notices_key].changed([question_id])
    raise web.HTTPSeeOther(request.app.router["manage"].url_for(question_id=str(question_id), token=token))
