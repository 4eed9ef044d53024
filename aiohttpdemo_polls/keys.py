"""Typed keys under which `main.init_app` stores shared things on the application."""

from typing import Any

from aiohttp import web
from aiopg.sa import Engine

from .live import Live

config_key = web.AppKey("config", dict[str, Any])
engine_key = web.AppKey("engine", Engine)
live_key = web.AppKey("live", Live)
