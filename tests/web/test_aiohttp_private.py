"""What web/aiohttp_private.py relies on in the installed aiohttp: these fail when it changes."""

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from aiohttpdemo_polls.web import aiohttp_private

# Each header form of RFC 6455 (7-bit, 16-bit and 64-bit lengths) at its edges, and non-ASCII.
TEXTS = ["", "x" * 125, "x" * 126, "x" * 65535, "x" * 65536, '{"question": "Café ☕?"}']
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)

Sender = Callable[[web.WebSocketResponse, asyncio.Transport], Awaitable[None]]


@pytest.fixture
async def serve_websocket(unused_tcp_port) -> AsyncIterator[Callable[[Sender], int]]:
    """An app whose one WebSocket, made as live/views.py makes its own, runs the given sender."""
    senders: list[Sender] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False)
        await ws.prepare(request)
        await senders[0](ws, request.transport)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()

    def serve(sender: Sender) -> int:
        senders.append(sender)
        return unused_tcp_port

    yield serve
    await runner.cleanup()


async def test_our_text_frame_is_byte_for_byte_aiohttps(serve_websocket):
    async def both(ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        for text in TEXTS:
            await ws.send_str(text)
            aiohttp_private.write_frame(transport, aiohttp_private.text_frame(text))

    reader, writer = await asyncio.open_connection("127.0.0.1", serve_websocket(both))
    try:
        writer.write(HANDSHAKE)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        for text in TEXTS:
            ours = aiohttp_private.text_frame(text)
            assert await reader.readexactly(len(ours)) == ours, len(text)  # what aiohttp sent
            assert await reader.readexactly(len(ours)) == ours, len(text)
    finally:
        writer.close()


async def test_our_frames_between_aiohttps_own_reach_a_client_whole(serve_websocket):
    async def mixed(ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        for text in TEXTS:
            aiohttp_private.write_frame(transport, aiohttp_private.text_frame(text))
            await ws.ping(b"p")

    port = serve_websocket(mixed)
    session = aiohttp.ClientSession()
    async with session, session.ws_connect(f"http://127.0.0.1:{port}/ws", autoping=False) as ws:
        for text in TEXTS:
            message = await ws.receive(timeout=10)
            assert (message.type, message.data) == (WSMsgType.TEXT, text)
            message = await ws.receive(timeout=10)
            assert (message.type, message.data) == (WSMsgType.PING, b"p")
        assert (await ws.receive(timeout=10)).type is WSMsgType.CLOSE


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


@pytest.mark.parametrize("secure", [False, True])
def test_our_cookie_header_is_the_one_set_cookie_writes(secure):
    response = web.Response()
    response.set_cookie(
        "polls_voter", "AbC-_x" * 4, max_age=31536000, path="/", httponly=True, samesite="Lax", secure=secure
    )
    written = response.cookies.output(header="").strip()
    assert aiohttp_private.cookie_header("polls_voter", "AbC-_x" * 4, 31536000, secure) == written
