"""/privacy: what the site stores and for how long, in plain words, written from the settings
this site runs with (the voter cookie's lifetime, retention.closed_days), so it cannot drift."""

from aiohttp import web

from ..web import content, i18n
from ..web.config import config_key, site
from ..web.voting import VOTER_COOKIE, VOTER_COOKIE_MAX_AGE

DAY = 24 * 3600


async def privacy(request: web.Request) -> web.Response:
    """The same for every reader of a language: rendered once per language and host, then cached."""

    async def render() -> tuple[bytes, float]:
        config = site(request)[config_key]
        context = {
            "voter_cookie": VOTER_COOKIE,
            "voter_cookie_days": VOTER_COOKIE_MAX_AGE // DAY,
            "language_cookie": i18n.COOKIE,
            "language_cookie_days": i18n.COOKIE_MAX_AGE // DAY,
            "closed_days": config["retention"]["closed_days"],
        }
        return content.render_page(request, "privacy.html", context), float("inf")

    return await content.cached_page(request, ("privacy", None), render)
