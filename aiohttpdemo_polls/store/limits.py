"""Per-client rate limits counted in PostgreSQL, so every process and host shares them: a row per
counted request in the limit's table (`schema._counter`), deleted once it leaves the window.
The creation of polls, reports and failed /admin sign-ins are each counted here."""

import math
from datetime import timedelta
from typing import Any

import sqlalchemy as sa


class TooMany(Exception):
    """The client reached the limit within the window; nothing was counted."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after  # seconds until one of its rows leaves the window


async def check(conn: Any, counter: sa.Table, client: str, limit: int, window: timedelta) -> None:
    """Raise TooMany when `client` has `limit` rows in `counter` within `window` (in a transaction).

    A lock on the client's name (held to the commit) makes concurrent requests of one client,
    in any process or host, count one after the other, so none slips past the limit. Its
    rows older than the window are deleted here: an address is kept no longer than needed.
    """
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(client, 0))))
    window_start = sa.func.now() - window
    mine = counter.c.client == client
    await conn.execute(counter.delete().where(mine, counter.c.created_at <= window_start))
    counted = await conn.scalar(sa.select(sa.func.count()).select_from(counter).where(mine))
    if counted >= limit:
        # When enough rows have left the window for one more (the oldest, unless the limit
        # was lowered since).
        leaves_at = (
            sa.select((counter.c.created_at + window - sa.func.now()).label("wait"))
            .where(mine)
            .order_by(counter.c.created_at)
            .offset(counted - limit)
            .limit(1)
        )
        wait = await conn.scalar(leaves_at)
        raise TooMany(max(1, math.ceil(wait.total_seconds())))


async def record(conn: Any, counter: sa.Table, client: str) -> None:
    """Count one request of `client` (after `check`, in its transaction)."""
    await conn.execute(counter.insert().values(client=client))


async def take(conn: Any, counter: sa.Table, client: str, limit: int, window: timedelta) -> None:
    """Count one request of `client`, or raise TooMany when its window is full."""
    await check(conn, counter, client, limit, window)
    await record(conn, counter, client)
