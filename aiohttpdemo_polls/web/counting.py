"""Counting every answer for Prometheus (metrics.py), when `metrics.port` turns it on."""

import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .. import metrics
from .config import config_key


def setup(app: web.Application) -> None:
    """First of the middlewares: it sees every answer as the client gets it, error pages included;
    first of the cleanup contexts, so that its last flush comes after everything else has stopped."""
    if app[config_key]["metrics"]["port"] == 0:
        return
    metrics.setup()
    app.middlewares.append(count_requests)
    app.cleanup_ctx.append(_flushing)


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """Count every answer and time it; outermost, so it sees the status the client gets."""
    started = time.perf_counter()
    route = request.match_info.route.name
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and aiohttp's own answers come raised
        metrics.answered(request.method, route, exc.status, started)
        raise
    metrics.answered(request.method, route, response.status, started)
    return response


async def _flushing(app: web.Application) -> AsyncIterator[None]:
    async with metrics.flushing():
        yield
