"""The app's way to the database: the connection pool, and the bus of changes (store.changes)
that tells every part of this process which polls changed, for the app's lifetime."""

import asyncio
from collections.abc import AsyncIterator

import aiopg.sa
from aiohttp import web
from aiopg.sa import Engine

from .. import metrics
from ..store import pgserver
from ..store.changes import Changes
from .config import config_key

engine_key = web.AppKey("engine", Engine)
# The URL the pool was opened with: `Engine.dsn` masks the password, so it cannot open another.
database_url_key = web.AppKey("database_url", str)
changes_key = web.AppKey("changes", Changes)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_pool)
    app.cleanup_ctx.append(_changes)


async def _pool(app: web.Application) -> AsyncIterator[None]:
    """Open the connection pool for the app's lifetime."""
    config = app[config_key]
    loop = asyncio.get_running_loop()
    # Starting the embedded server blocks for up to a second; keep the loop free.
    url = await loop.run_in_executor(None, pgserver.configured_url, config)
    db = config["database"]
    async with aiopg.sa.create_engine(
        url, minsize=db["pool_min"], maxsize=db["pool_max"], timeout=db["timeout"]
    ) as engine:
        app[engine_key] = engine
        app[database_url_key] = url
        async with metrics.pool_in_use(engine):
            yield


async def _changes(app: web.Application) -> AsyncIterator[None]:
    """The process's LISTEN connection and bus of changes (store/changes.py).

    `database.listen_url` names its server when the pool goes through a pooler that cannot LISTEN."""
    db = app[config_key]["database"]
    bus = Changes(db["listen_url"] or app[database_url_key], timeout=db["timeout"])
    await bus.start()
    app[changes_key] = bus
    try:
        yield
    finally:
        await bus.stop()
