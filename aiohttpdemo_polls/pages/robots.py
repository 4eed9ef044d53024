"""robots.txt: crawlers may fetch every page. A manage page is kept private by the secret in its
address (web.headers.private), not by robots rules: a crawler never learns the address.
"""

from aiohttp import web

ROBOTS_TXT = "User-agent: *\nAllow: /\n"


async def robots(request: web.Request) -> web.Response:
    """The same short text for every crawler."""
    return web.Response(text=ROBOTS_TXT, headers={"Cache-Control": "max-age=86400"})
