"""Typed keys under which `main.init_app` stores shared things on the application."""

from typing import Any

from aiohttp import web
from aiopg.sa import Engine

from .cache import Cache
from .live import Live
from .notices import Notices
from .votes import VoteBatcher

config_key = web.AppKey("config", dict[str, Any])
engine_key = web.AppKey("engine", Engine)
# The URL the pool was opened with: `Engine.dsn` masks the password, so it cannot open another.
database_url_key = web.AppKey("database_url", str)
notices_key = web.AppKey("notices", Notices)
live_key = web.AppKey("live", Live)
cache_key = web.AppKey("cache", Cache)
votes_key = web.AppKey("votes", VoteBatcher)
