"""What web/aiohttp_private.py relies on in the installed aiohttp: these fail when it changes."""

import asyncio
import socket

from aiohttp import web

from aiohttpdemo_polls.web import aiohttp_private


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def test_a_site_listens_with_an_asyncio_server_we_can_reach():
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        # gunicorn's aiohttp worker starts a SockSite on each of its sockets; `python -m`, a TCPSite.
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        given = web.SockSite(runner, socket.create_server(("127.0.0.1", 0)))
        for site in (tcp, given):
            assert aiohttp_private.listening_server(site) is None  # not started yet
            await site.start()
            server = aiohttp_private.listening_server(site)
            assert isinstance(server, asyncio.Server) and server.is_serving()
        listening = [
            s.getsockname() for site in (tcp, given) for s in aiohttp_private.listening_server(site).sockets
        ]
        assert sorted(listening) == sorted(runner.addresses)
    finally:
        await runner.cleanup()
