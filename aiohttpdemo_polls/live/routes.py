"""Wiring live results into the app: the hub, fed by the bus of changes, and its WebSocket route."""

from collections.abc import AsyncIterator

from aiohttp import web

from ..web.config import config_key
from ..web.database import changes_key, engine_key
from ..web.ranked import live_version, ranked_count
from ..web.routes import POLL
from . import views
from .hub import Live, live_key


def setup(app: web.Application) -> None:
    app.router.add_get(POLL + "/live", views.live, name="live")
    app.cleanup_ctx.append(_hub)
    app.on_shutdown.append(_close_sockets)


async def _hub(app: web.Application) -> AsyncIterator[None]:
    """The watchers of live results, fed by the bus of changes like the page cache."""
    bus = app[changes_key]

    async def ranked_version(question_id: int) -> str:
        return live_version(await ranked_count(app, question_id))

    hub = Live(
        app[engine_key], lambda: bus.listening, **app[config_key]["live"], ranked_version=ranked_version
    )
    await hub.start()
    app[live_key] = hub
    try:
        with bus.subscribe(hub.changed):
            yield
    finally:
        await hub.stop()


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, close every live WebSocket with 1001 (going away) so clients reconnect."""
    if live_key in app:
        await app[live_key].close_all()
