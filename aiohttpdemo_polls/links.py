"""Full links to this site, for people to share: the manage page's two links, the presenter
view's QR code.

They are built from the origin the request reached (https when the config says the site is
served over it), so the same code is right behind nginx, on a laptop and in tests.
"""

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
