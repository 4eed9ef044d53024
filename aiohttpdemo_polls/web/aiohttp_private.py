"""The one place that reaches past aiohttp's public API, where it has none for what we need or
its public way costs real speed. tests/web/test_aiohttp_private.py fails when aiohttp changes it.
"""

import asyncio
import struct

from aiohttp import web


def listening_server(site: web.BaseSite) -> asyncio.AbstractServer | None:
    """The asyncio server a started site listens with; None before it starts.

    The draining shutdown (serve.py) takes the connections queued on its sockets before it
    closes them; aiohttp keeps the server in `site._server` and publishes neither it nor its
    sockets (`runner.addresses` gives only their addresses)."""
    return site._server


def text_frame(text: str) -> bytes:
    """The WebSocket text frame aiohttp's writer would send for `text` on a socket made with
    `compress=False`: unmasked, one fragment (RFC 6455 section 5.2)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


def write_frame(transport: asyncio.Transport, frame: bytes) -> None:
    """Send a `text_frame` on a prepared WebSocketResponse's transport, past its writer.

    One update goes to thousands of sockets: built once, the same bytes go to each, where
    `ws.send_str` would frame it again for every one. Safe because the socket never compresses
    (its writer keeps no state between frames) and aiohttp writes each of its own frames
    (pong, ping, close) at once, so ours never land inside one of them."""
    transport.write(frame)


def cookie_header(name: str, value: str, max_age: int, secure: bool) -> str:
    """The Set-Cookie value `response.set_cookie(name, value, max_age=max_age, path="/",
    httponly=True, samesite="Lax", secure=secure)` writes, for a value that needs no quoting.

    Every new voter's vote sets one; aiohttp's way builds and formats an `http.cookies.Morsel`
    each time, which costs the vote path about a twentieth of its speed."""
    return f"{name}={value}; HttpOnly; Max-Age={max_age}; Path=/; SameSite=Lax{'; Secure' if secure else ''}"
