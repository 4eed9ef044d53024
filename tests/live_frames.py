"""The live-results WebSocket as a watcher reads it: its JSON frames and their vote counts."""

import json
from typing import Any

import aiohttp


async def frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame, which must be JSON text, within `timeout` seconds (a test that promises
    a quicker update says so with a shorter one)."""
    message = await ws.receive(timeout=timeout)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


def counts(message: dict[str, Any]) -> dict[int, int]:
    """A snapshot's or an update's vote counts, by choice id."""
    return {c["id"]: c["votes"] for c in message["choices"]}
