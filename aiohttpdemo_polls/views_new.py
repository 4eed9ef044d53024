"""Making a poll in the browser: the new-poll form."""

import aiohttp_jinja2
from aiohttp import web


@aiohttp_jinja2.template("new_poll.html")
async def new_poll(request: web.Request) -> dict:
    """The empty new-poll form (submitting it arrives in the next change)."""
    return {}
