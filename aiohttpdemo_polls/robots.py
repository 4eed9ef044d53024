"""robots.txt: crawlers may fetch every page.

The manage pages are not listed: their addresses hold a secret token that no page links to,
and each says `noindex` itself, which a crawler can read only on a page it may fetch (a
Disallow would keep a leaked address listed, bare, without ever seeing that noindex).
"""

from aiohttp import web

ROBOTS_TXT = "User-agent: *\nAllow: /\n"


async def robots(request: web.Request) -> web.Response:
    """The same short text for every crawler."""
    return web.Response(text=ROBOTS_TXT, headers={"Cache-Control": "max-age=86400"})
