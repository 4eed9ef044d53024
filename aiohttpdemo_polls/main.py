"""init_app: build the application from a config. Wiring only."""

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp_jinja2
import aiopg.sa
import jinja2
from aiohttp import web

from . import cache, links, live, logs, middlewares, pgserver, routes, settings, views, votes
from .keys import cache_key, config_key, database_url_key, engine_key, live_key, votes_key

TEMPLATES = settings.ASSETS / "templates"


def init_app(argv: Sequence[str] | None = None, config: dict[str, Any] | None = None) -> web.Application:
    """The app factory: `python -m aiohttp.web aiohttpdemo_polls.main:init_app -c FILE` works too."""
    if config is None:
        config = settings.from_argv(argv or [])
    app = web.Application(
        client_max_size=config["max_body_size"],
        middlewares=[middlewares.error_pages, middlewares.state_changes],
    )
    app[config_key] = config
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters={"when": views.format_time, "absolute": links.absolute_filter},
        # Checking each template file's mtime on every render costs a stat() per page;
        # only a developer editing templates (debug) wants that.
        auto_reload=config["debug"],
    )
    app[aiohttp_jinja2.static_root_key] = "/static"
    app.on_response_prepare.append(middlewares.security_headers)
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(live_results)
    app.cleanup_ctx.append(page_cache)
    app.cleanup_ctx.append(vote_batcher)
    app.on_shutdown.append(close_live_sockets)
    routes.setup(app, serve_static=config["debug"])
    return app


async def create_app() -> web.Application:
    """The app for gunicorn with aiohttp's worker (`aiohttpdemo_polls.main:create_app`).

    gunicorn passes no arguments: the settings file is named by POLLS_CONFIG (unset: the same
    default as `python -m`) and POLLS_* variables override it.
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
        yield


async def live_results(app: web.Application) -> AsyncIterator[None]:
    """The process's LISTEN connection and its watchers (live.py), for the app's lifetime."""
    hub = live.Live(app[engine_key], app[database_url_key], **app[config_key]["live"])
    await hub.start()
    app[live_key] = hub
    try:
        yield
    finally:
        await hub.stop()


async def close_live_sockets(app: web.Application) -> None:
    """On shutdown, close every live WebSocket with 1001 (going away) so clients reconnect."""
    if live_key in app:
        await app[live_key].close_all()


async def page_cache(app: web.Application) -> AsyncIterator[None]:
    """Poll content in memory (cache.py), trusted only while live results' listener listens."""
    hub = app[live_key]
    pages = cache.Cache()
    pages.trusted = lambda: hub.listening
    unsubscribe = hub.subscribe(pages.notice)
    app[cache_key] = pages
    try:
        yield
    finally:
        unsubscribe()


async def vote_batcher(app: web.Application) -> AsyncIterator[None]:
    """The process's group-commit vote writer (votes.py); lets queued votes finish on shutdown."""
    batcher = votes.VoteBatcher(app[engine_key], on_commit=app[cache_key].invalidate_polls)
    app[votes_key] = batcher
    yield
    await batcher.wait_idle()
