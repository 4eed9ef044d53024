"""The validated settings (settings.py) on the application, for every component to read."""

from typing import Any

from aiohttp import web

config_key = web.AppKey("config", dict[str, Any])


def setup(app: web.Application, config: dict[str, Any]) -> None:
    app[config_key] = config
