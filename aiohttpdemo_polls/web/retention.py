"""The retention job (store/retention.py) for the app's lifetime: old polls and spent rate-limit
counters deleted in the background, by one process of the deployment at a time."""

from collections.abc import AsyncIterator

from aiohttp import web

from ..store.retention import Sweeper
from .config import config_key
from .database import changes_key, engine_key

sweeper_key = web.AppKey("sweeper", Sweeper)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_sweeper)


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Started once the pool and the bus of changes are open; stopped before they close."""
    sweeper = Sweeper(app[engine_key], app[changes_key], app[config_key]["retention"]["closed_days"])
    app[sweeper_key] = sweeper
    sweeper.start()
    try:
        yield
    finally:
        await sweeper.stop()
