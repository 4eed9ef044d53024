"""Where this app relies on aiopg 1.4 beyond its public API, or corrects it: this module only.

aiopg has had no release since 1.4.0, and its fix for descriptors of 1024 and more
(aio-libs/aiopg pull request #668) was never merged. tests/store/test_aiopg_fixes.py fails when an
installed aiopg changes what this module relies on.
"""

import asyncio
import errno
import os
import select
import types
from collections.abc import Iterable
from typing import Any

import aiopg.connection
import psycopg2.extensions


def _select_by_poll(
    rlist: list[int], wlist: list[int], xlist: list[int], timeout: float | None = None
) -> tuple:
    """`select.select` answered by `poll()`, which takes any descriptor number.

    After any error on a connection aiopg asks `select.select` whether its socket is still
    open; `select` raises ValueError for a descriptor of 1024 or more, leaving the query
    unanswered and the connection wedged. A closed descriptor raises OSError(EBADF) as before.
    """
    poller = select.poll()
    wanted: dict[int, int] = {}
    for fds, mask in ((rlist, select.POLLIN), (wlist, select.POLLOUT), (xlist, select.POLLPRI)):
        for fd in fds:
            wanted[fd] = wanted.get(fd, 0) | mask
    for fd, mask in wanted.items():
        poller.register(fd, mask)
    events = dict(poller.poll(None if timeout is None else int(timeout * 1000)))
    if any(event & select.POLLNVAL for event in events.values()):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    ready = [
        [fd for fd in fds if events.get(fd, 0) & (mask | select.POLLHUP | select.POLLERR)]
        for fds, mask in ((rlist, select.POLLIN), (wlist, select.POLLOUT), (xlist, select.POLLPRI))
    ]
    return tuple(ready)


# aiopg's connection module calls `select.select` in `Connection._ready` and nowhere else.
aiopg.connection.select = types.SimpleNamespace(select=_select_by_poll)


def is_idle(conn: Any) -> bool:
    """True when an aiopg connection (or aiopg.sa's) is open with nothing in flight and no
    transaction: the one state in which the pool may lend it again.

    aiopg marks a query in flight by its `_waiter`; psycopg2 alone would not show a query
    whose answer aiopg never delivered."""
    raw_conn = getattr(conn, "connection", conn)  # aiopg.sa wraps the aiopg connection
    if raw_conn is None or raw_conn.closed:
        return False
    raw = raw_conn.raw
    return (
        raw_conn._waiter is None
        and not raw.isexecuting()
        and raw.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    )


async def drop_idle(engine: Any) -> None:
    """Close the pool's idle connections (aiopg.sa's engine has no public call for it).

    One connection lost under a statement most often means all went (a restart, a failover,
    a pooler replacing its connections): the next borrower then gets a new one, not the next
    dead one in line."""
    await engine._pool.clear()


async def cancel(tasks: Iterable[asyncio.Task]) -> None:
    """Cancel `tasks` and wait until each has ended: aiopg's connect can swallow a cancellation,
    so one that is still running a second later is cancelled again."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1)
