"""init_app: build the application from a config. Wiring only."""

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp_jinja2
import aiopg.sa
import jinja2
from aiohttp import web

from . import (
    cache,
    i18n,
    links,
    live,
    logs,
    metrics,
    middlewares,
    notices,
    pgserver,
    routes,
    settings,
    votes,
)
from .compression import compress_pages
from .keys import cache_key, config_key, database_url_key, engine_key, live_key, notices_key, votes_key

TEMPLATES = settings.ASSETS / "templates"
TRANSLATIONS = settings.ASSETS / "translations"


def init_app(argv: Sequence[str] | None = None, config: dict[str, Any] | None = None) -> web.Application:
    """The app factory: `python -m aiohttp.web aiohttpdemo_polls.main:init_app -c FILE` works too."""
    if config is None:
        config = settings.from_argv(argv or [])
    counted = config["metrics"]["port"] != 0
    if counted:
        metrics.setup()
    app = web.Application(
        client_max_size=config["max_body_size"],
        # Counting first: it sees every answer as the client gets it, error pages included.
        middlewares=[
            *([metrics.count_requests] if counted else []),
            compress_pages,
            middlewares.error_pages,
            middlewares.refuse_unreadable,
            middlewares.refuse_cross_site,
            middlewares.step_aside,
        ],
    )
    app[config_key] = config
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters={"absolute": links.absolute_filter},
        # Checking each template file's mtime on every render costs a stat() per page;
        # only a developer editing templates (debug) wants that.
        auto_reload=config["debug"],
    )
    # One Environment for every language: the page's language comes from its request (i18n.py).
    i18n.install(env, i18n.Catalogs(TRANSLATIONS))
    app[aiohttp_jinja2.static_root_key] = "/static"
    app.on_response_prepare.append(middlewares.security_headers)
    if counted:  # first, so that its last flush comes after everything else has stopped
        app.cleanup_ctx.append(metrics.flushing)
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(poll_notices)
    app.cleanup_ctx.append(page_cache)
    app.cleanup_ctx.append(live_results)
    app.cleanup_ctx.append(vote_batcher)
    app.on_shutdown.append(close_live_sockets)
    routes.setup(app, serve_static=config["debug"])
    return app


async def create_app() -> web.Application:
    """The app of a gunicorn worker (serve.create_runner), which is given no arguments: the
    settings file is named by POLLS_CONFIG (unset: `python -m`'s default), POLLS_* override it.
    """
    config = settings.load(os.environ.get("POLLS_CONFIG"), os.environ)
    logs.configure(config["log_level"])  # the app's diagnostics; gunicorn writes access lines
    return init_app(config=config)


async def database(app: web.Application) -> AsyncIterator[None]:
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


async def poll_notices(app: web.Application) -> AsyncIterator[None]:
    """The process's LISTEN connection and notice bus (notices.py), for the app's lifetime.

    `database.listen_url` names its server when the pool goes through a pooler that cannot LISTEN."""
    db = app[config_key]["database"]
    bus = notices.Notices(db["listen_url"] or app[database_url_key], timeout=db["timeout"])
    await bus.start()
    app[notices_key] = bus
    try:
        yield
    finally:
        await bus.stop()


async def page_cache(app: web.Application) -> AsyncIterator[None]:
    """Poll content in memory (cache.py), trusted only while notices can arrive."""
    bus = app[notices_key]
    pages = cache.Cache()
    pages.trusted = lambda: bus.listening
    unsubscribe = bus.subscribe(pages.changed)
    app[cache_key] = pages
    try:
        yield
    finally:
        unsubscribe()


async def live_results(app: web.Application) -> AsyncIterator[None]:
    """The watchers of live results (live.py), fed by the notice bus like the cache."""
    bus = app[notices_key]
    hub = live.Live(app[engine_key], lambda: bus.listening, **app[config_key]["live"])
    await hub.start()
    unsubscribe = bus.subscribe(hub.changed)
    app[live_key] = hub
    try:
        yield
    finally:
        unsubscribe()
        await hub.stop()


async def close_live_sockets(app: web.Application) -> None:
    """On shutdown, close every live WebSocket with 1001 (going away) so clients reconnect."""
    if live_key in app:
        await app[live_key].close_all()


async def vote_batcher(app: web.Application) -> AsyncIterator[None]:
    """The process's group-commit vote writer (votes.py); lets queued votes finish on shutdown.

    Its commits go on the notice bus at once, so this process's next page shows them."""
    batcher = votes.VoteBatcher(app[engine_key], on_commit=app[notices_key].changed)
    app[votes_key] = batcher
    yield
    await batcher.wait_idle()
