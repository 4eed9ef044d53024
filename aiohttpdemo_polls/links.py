"""Full links to this site for people to share (manage page, QR code, `og:url`), built from
the origin the request reached, so they are right behind nginx, on a laptop and in tests.
"""

import jinja2
from aiohttp import web
from yarl import URL

from .keys import config_key


def absolute(request: web.Request, path: URL) -> str:
    """A full link to share; https when the config says the site is served over it."""
    origin = request.url.origin()
    if request.app[config_key]["https"]:
        origin = origin.with_scheme("https")
    return str(origin.join(path))


def short(link: str) -> str:
    """The link as people type it from a screen: without its scheme."""
    return link.split("://", 1)[-1]


@jinja2.pass_context
def absolute_filter(context: jinja2.runtime.Context, path: URL) -> str:
    """`{{ url('poll', question_id=1) | absolute }}` in templates, e.g. for `og:url`.

    Views pass `request` in every template's context for it (a context processor would add
    a middleware to every request, and aiohttp_jinja2's stores it under a string key).
    """
    return absolute(context["request"], path)
