"""The validated settings (settings.py) on the application, for every component to read."""

from typing import Any

from aiohttp import web

config_key = web.AppKey("config", dict[str, Any])


def setup(app: web.Application, config: dict[str, Any]) -> None:
    app[config_key] = config


def site(request: web.Request) -> web.Application:
    """The site's application, where every component keeps its state, also for a request the
    nested API took: what `request.config_dict` finds, without a chain built and missed per read."""
    return request.match_info.apps[0]
