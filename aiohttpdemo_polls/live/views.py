"""The live-results endpoint: a WebSocket per open results or manage page (see hub.py)."""

from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..store import connections, making, polls, rules, tokens
from ..web.config import site
from ..web.content import published_content
from ..web.database import engine_key
from ..web.i18n import N_
from ..web.request import poll_id
from ..web.voting import voter_id
from .hub import Watcher, live_key

# Clients have nothing to say; anything bigger than this closes the socket (1009).
MAX_CLIENT_MESSAGE = 1024
CLOSE_TIMEOUT = 5.0  # seconds to wait for a client's answer to our close frame
FULL = N_(
    "Too many people are watching live results on this server right now. "
    "The results page still works; reload it to see new votes."
)
NOT_WEBSOCKET = N_("This address serves live results to the results page over WebSocket.")


async def live(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket that gets the poll's counters now and after every change."""
    hub = site(request)[live_key]
    if hub.full:
        raise web.HTTPServiceUnavailable(text=FULL)
    question_id = poll_id(request)
    # A 404 unless published; from the page cache, so a crowd reconnecting after a restart
    # costs one database read, not one each.
    content = await published_content(request, question_id)
    voted, is_maker = await _reader(request, content.question)
    ws = web.WebSocketResponse(
        # The hub pings (hub.py), and must see each pong: one proves the page reads.
        autoping=False,
        max_msg_size=MAX_CLIENT_MESSAGE,
        compress=False,  # frames are small; compressing each copy costs more than it saves
        timeout=CLOSE_TIMEOUT,
    )
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text=NOT_WEBSOCKET)
    if hub.full:  # checked again: others may have joined while we asked the database
        raise web.HTTPServiceUnavailable(text=FULL)
    await ws.prepare(request)
    watcher = Watcher(question_id, ws, request.transport, voted=voted, is_maker=is_maker)
    hub.join(watcher)
    try:
        async for message in ws:
            if message.type is WSMsgType.PONG:
                hub.answered(watcher)
            elif message.type is WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type is WSMsgType.BINARY:
                await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"Text frames only")
            # Text from the client is ignored: the snapshot comes on every (re)connect.
    finally:
        hub.leave(watcher)
    return ws


async def _reader(request: web.Request, question: Any) -> tuple[bool, bool]:
    """(voted, is_maker) of the page that opens the socket, read only when they can matter:
    a poll whose counts are not always for everyone (rules.may_see_counts). Read even when
    it is closed, as it may be reopened while this socket is open."""
    if question.results == rules.ALWAYS:
        return False, False
    voter, token = voter_id(request), request.query.get("token")
    voted = is_maker = False
    async with connections.connection(site(request)[engine_key]) as conn:
        if token:
            managed = await making.managed_poll(conn, question.id)
            is_maker = managed is not None and tokens.token_matches(token, managed.token_hash)
        if voter is not None:
            voted = await polls.has_voted(conn, question.id, voter)
    return voted, is_maker
