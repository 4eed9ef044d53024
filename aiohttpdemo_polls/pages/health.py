"""`GET /healthz` for load balancers and orchestrators: 200 `ok` when this process and its
database answer, else 503 `database unavailable`, never a hang.
"""

import asyncio
import logging

import psycopg2
from aiohttp import web

from .. import logs
from ..store import connections
from ..web.config import site
from ..web.database import engine_key

log = logging.getLogger(__name__)

# A probe must be answered well within the prober's own timeout, even when the database
# hangs rather than refuses (a lost network, a full pool): the wait for a pooled
# connection and the query share this bound.
TIMEOUT = 1.0


async def healthz(request: web.Request) -> web.Response:
    """200 when `SELECT 1` through the pool answers within TIMEOUT, else 503."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async with connections.connection(site(request)[engine_key]) as conn:
                await connections.ping(conn)
    except TimeoutError:
        log.warning("health check: the database did not answer within %.1f s", TIMEOUT)
        return _answer(503, "database unavailable")
    except (psycopg2.Error, OSError) as exc:
        log.warning("health check: database unavailable: %s", logs.first_line(exc))
        return _answer(503, "database unavailable")
    return _answer(200, "ok")


def _answer(status: int, text: str) -> web.Response:
    # no-store: a cache between the prober and the app must never answer for the app.
    return web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store"})
