"""The one place that reaches past aiohttp's public API, where it has none for what we need.
tests/test_aiohttp_private.py fails when aiohttp changes it.
"""

import asyncio

from aiohttp import web


def listening_server(site: web.BaseSite) -> asyncio.AbstractServer | None:
    """The asyncio server a started site listens with; None before it starts.

    The draining shutdown (serve.py) takes the connections queued on its sockets before it
    closes them; aiohttp keeps the server in `site._server` and publishes neither it nor its
    sockets (`runner.addresses` gives only their addresses)."""
    return site._server
