"""robots.txt: crawlers may fetch every page. Manage pages say `noindex` themselves, which a
crawler reads only on a page it may fetch, so they are not disallowed here.
"""

from aiohttp import web

ROBOTS_TXT = "User-agent: *\nAllow: /\n"


async def robots(request: web.Request) -> web.Response:
    """The same short text for every crawler."""
    return web.Response(text=ROBOTS_TXT, headers={"Cache-Control": "max-age=86400"})
