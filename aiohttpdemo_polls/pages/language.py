"""The language switch on every page: a form that works without JavaScript."""

from aiohttp import web

from ..web import i18n
from ..web.config import config_key, site
from ..web.forms import read_form
from ..web.i18n import N_

UNKNOWN_LANGUAGE = N_("That language is not one this site is written in.")
MAX_NEXT = 2048


def same_site_path(value: object) -> str | None:
    """`value` when it is a path on this site ('/poll/1?x=y'), else None: never another host.

    '//host' and '/\\host' are addresses of other hosts to a browser, and control characters
    could split the Location header; all are refused.
    """
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_NEXT:
        return None
    if value.startswith("//") or "\\" in value or not (value.isascii() and value.isprintable()):
        return None
    return value


async def choose_language(request: web.Request) -> web.Response:
    """Remember the chosen language in a cookie, then show the same page again (303)."""
    form = await read_form(request)
    chosen = form.get("language")
    if chosen not in i18n.LANGUAGES:
        raise web.HTTPBadRequest(text=UNKNOWN_LANGUAGE)
    back = same_site_path(form.get("next")) or str(request.app.router["index"].url_for())
    response = web.Response(status=303, headers={"Location": back})
    i18n.set_cookie(response, chosen, secure=site(request)[config_key]["https"])
    return response
