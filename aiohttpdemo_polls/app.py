"""init_app: the application, made of its components in order. Wiring only."""

import os
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from . import logs, settings
from .api import routes as api
from .live import routes as live
from .maker import routes as maker
from .moderation import routes as moderation
from .pages import routes as pages
from .web import (
    cache,
    checks,
    compression,
    counting,
    database,
    errors,
    headers,
    retention,
    templates,
    voting,
)
from .web import config as app_config


def init_app(argv: Sequence[str] | None = None, config: dict[str, Any] | None = None) -> web.Application:
    """The app factory: `python -m aiohttp.web aiohttpdemo_polls.app:init_app -c FILE` works too."""
    if config is None:
        config = settings.from_argv(argv or [])
    app = web.Application(client_max_size=config["max_body_size"])
    app_config.setup(app, config)
    # Middlewares run in the order set up: counting sees every answer as the client gets it.
    counting.setup(app)
    compression.setup(app)
    errors.setup(app)
    checks.setup(app)
    headers.setup(app)
    templates.setup(app)
    # Resources open in this order and close in the reverse.
    database.setup(app)
    cache.setup(app)
    live.setup(app)
    voting.setup(app)
    retention.setup(app)
    pages.setup(app)
    maker.setup(app)
    moderation.setup(app)
    api.setup(app)
    return app


async def create_app() -> web.Application:
    """The app of a gunicorn worker (serve.create_runner), which is given no arguments: the
    settings file is named by POLLS_CONFIG (unset: `python -m`'s default), POLLS_* override it.
    """
    config = settings.load(os.environ.get("POLLS_CONFIG"), os.environ)
    logs.configure(config["log_level"])  # the app's diagnostics; gunicorn writes access lines
    return init_app(config=config)
