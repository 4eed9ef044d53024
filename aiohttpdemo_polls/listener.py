"""The process's LISTEN connection on `db.CHANNEL`, kept open for the app's lifetime.

It only hears notices and keeps the connection alive; `live.Live` decides what they mean.
PostgreSQL delivers a notice only when its transaction commits, and drops the notices
sent while nobody listens, so the owner is told about every gap: `on_lost` when the
connection fails, `on_back` once it LISTENs again (the owner then re-reads what it
needs, which covers whatever changed in between).
"""

import asyncio
import logging
import random
from collections.abc import Callable

import aiopg
import psycopg2

from . import db, logs

log = logging.getLogger(__name__)

RECONNECT_MIN = 0.1  # seconds; doubles up to RECONNECT_MAX, with jitter
RECONNECT_MAX = 5.0
IDLE_PING = 30.0  # seconds without notices before checking the connection


class Listener:
    """LISTEN on one dedicated aiopg connection; reconnect with backoff when it is lost."""

    def __init__(
        self,
        dsn: str,
        on_notices: Callable[[set[int]], None],
        on_lost: Callable[[], None],
        on_back: Callable[[], None],
    ) -> None:
        self.dsn = dsn
        self.on_notices = on_notices
        self.on_lost = on_lost
        self.on_back = on_back
        self.listening = False
        self.backend_pid: int | None = None  # the listening connection's server process
        self._conn: aiopg.Connection | None = None

    async def connect(self) -> None:
        """Open the connection and LISTEN; raises when the database cannot be reached."""
        conn = await aiopg.connect(self.dsn)
        try:
            await db.listen(conn)
            self.backend_pid = await conn.get_backend_pid()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.listening = True

    async def run(self) -> None:
        """Hear notices until cancelled, reconnecting whenever the connection fails."""
        delay = RECONNECT_MIN
        while True:
            if self._conn is None:
                try:
                    await self.connect()
                except psycopg2.Error as exc:
                    log.warning("live results: cannot listen yet (%s); retrying", logs.first_line(exc))
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                log.info("live results: listening again")
                self.on_back()
            delay = RECONNECT_MIN
            try:
                await self._drain(self._conn)
            except psycopg2.Error as exc:
                log.warning("live results: lost the listening connection (%s)", logs.first_line(exc))
            finally:
                self.listening = False
                conn, self._conn = self._conn, None
                await conn.close()
            self.on_lost()
            # A restarting server refuses at once; give it a moment before the first try.
            await asyncio.sleep(RECONNECT_MIN * random.uniform(0.5, 1.0))

    async def _drain(self, conn: aiopg.Connection) -> None:
        """Take notices as they come, a batch at a time, until the connection fails.

        The pending `get` outlives an idle timeout (`asyncio.wait` does not cancel it), so
        a notice arriving just then is not lost; and unlike `asyncio.wait_for` on Python
        3.11, a cancellation (app shutdown) is never swallowed when a notice comes with it.
        """
        notifies = conn.notifies
        getter: asyncio.Future | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(notifies.get())
                done, _ = await asyncio.wait({getter}, timeout=IDLE_PING)
                if not done:
                    await db.ping_raw(conn)  # a silently dead connection raises here
                    continue
                batch, getter = [getter.result()], None
                while not notifies.empty():
                    batch.append(notifies.get_nowait())
                self.on_notices(_poll_ids(batch))
        finally:
            if getter is not None:
                getter.cancel()


def _poll_ids(notices: list) -> set[int]:
    ids = set()
    for notice in notices:
        try:
            ids.add(int(notice.payload))
        except ValueError:
            log.warning("live results: ignoring a notice with payload %r", notice.payload[:40])
    return ids
