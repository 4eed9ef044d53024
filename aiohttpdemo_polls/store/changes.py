"""The one path from a changed poll to what depends on it, in every process: `Listener`
hears the changes the schema's triggers send (NOTIFY), and `Changes`, the bus of changes,
hands each changed poll to its subscribers (the page cache, live results), as it does for
this process's own commits.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiopg
import psycopg2

from .. import logs, metrics
from . import aiopg_fixes, connections, schema

log = logging.getLogger(__name__)

RECONNECT_MIN = 0.1  # seconds; doubles up to RECONNECT_MAX, with jitter
# Bounds how long after the database is back this process learns it (and takes requests again).
RECONNECT_MAX = 1.0
# Seconds without changes heard before checking the connection. The page cache is trusted while
# this connection is thought alive, so this (plus REACH_TIMEOUT) bounds how long a host cut
# off from the database, its connection silently dead, serves pages no change can reach,
# and how long it takes to step aside (`away`).
IDLE_PING = 0.5
# Seconds the listening connection may take to connect or to answer a ping; past it, the
# database counts as away. A healthy server answers in milliseconds.
REACH_TIMEOUT = 1.0


Subscriber = Callable[[int | None], None]


class Listener:
    """LISTEN on one dedicated aiopg connection; reconnect with backoff when it is lost.

    PostgreSQL drops the changes sent while nobody listens, so the owner is told of every
    gap: `on_lost` when the connection fails, `on_back` once it LISTENs again.
    """

    def __init__(
        self,
        dsn: str,
        on_changes: Callable[[set[int] | None], None],
        on_lost: Callable[[], None],
        on_back: Callable[[], None],
        timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        # Bounds the connect and the idle ping, with REACH_TIMEOUT: across a lost network they
        # would hang (for aiopg's default minute) instead of failing, and no gap would be told.
        self.timeout = timeout
        self.on_changes = on_changes
        self.on_lost = on_lost
        self.on_back = on_back
        self.listening = False
        # True from a failed connect or an unanswered ping until LISTEN works again: the
        # database is out of reach, and waiting for it would only keep requests waiting.
        self.away = False
        self.backend_pid: int | None = None  # the listening connection's server process
        self._conn: aiopg.Connection | None = None

    async def connect(self) -> None:
        """Open the connection and LISTEN; raises when the database cannot be reached."""
        conn = await aiopg.connect(self.dsn, timeout=min(self.timeout, REACH_TIMEOUT))
        try:
            await connections.listen(conn)
            self.backend_pid = await conn.get_backend_pid()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.listening = True

    async def run(self) -> None:
        """Hear changes until cancelled, reconnecting whenever the connection fails."""
        delay = RECONNECT_MIN
        while True:
            if self._conn is None:
                try:
                    await self.connect()
                except Exception as exc:
                    self.away = True
                    _log_failure("changes: cannot listen yet (%s); retrying", exc)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                log.info("changes: listening again")
                self.away = False
                self.on_back()
                metrics.listener_reconnected()
            delay = RECONNECT_MIN
            try:
                await self._drain(self._conn)
            except Exception as exc:
                # Whatever broke, the way back is the same: a new connection, then a resync.
                self.away = isinstance(exc, TimeoutError)  # unanswered: not merely closed
                _log_failure("changes: lost the listening connection (%s)", exc)
            finally:
                self.listening = False
                conn, self._conn = self._conn, None
                await conn.close()
            self.on_lost()
            # A restarting server refuses at once; give it a moment before the first try.
            await asyncio.sleep(RECONNECT_MIN * random.uniform(0.5, 1.0))

    async def _drain(self, conn: aiopg.Connection) -> None:
        """Take changes as they come, a batch at a time, until the connection fails.

        The pending `get` outlives an idle timeout (`asyncio.wait` does not cancel it), so
        a change arriving just then is not lost; and unlike `asyncio.wait_for` on Python
        3.11, a cancellation (app shutdown) is never swallowed when a change comes with it.
        """
        notifies = conn.notifies
        getter: asyncio.Future | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(notifies.get())
                done, _ = await asyncio.wait({getter}, timeout=IDLE_PING)
                if not done:
                    async with asyncio.timeout(REACH_TIMEOUT):
                        await connections.ping_raw(conn)  # a silently dead connection raises here
                    continue
                batch, getter = [getter.result()], None
                while not notifies.empty():
                    batch.append(notifies.get_nowait())
                self.on_changes(_poll_ids(batch))
        finally:
            if getter is not None:
                getter.cancel()


def _log_failure(message: str, exc: Exception) -> None:
    """The database's failures in a line; anything else, a fault of ours, with its traceback."""
    if isinstance(exc, psycopg2.Error | TimeoutError | OSError):
        log.warning(message, logs.first_line(exc))
    else:
        log.exception(message, type(exc).__name__)


def _poll_ids(notifications: list) -> set[int] | None:
    """The polls these NOTIFY messages name; None when one says anything may have changed."""
    ids = set()
    for notification in notifications:
        if notification.payload == schema.EVERYTHING:
            return None
        try:
            ids.add(int(notification.payload))
        except ValueError:
            log.warning("changes: ignoring a change with payload %r", notification.payload[:40])
    return ids


class Changes:
    """The process's bus of changes: `changed(ids)` tells every subscriber, from the listener
    or from a write this process just committed (so its next page is fresh at once)."""

    def __init__(self, dsn: str, timeout: float = 5.0) -> None:
        self.listener = Listener(dsn, self.changed, self._gap, self._gap, timeout)
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """LISTEN before the app takes requests (so no early change is missed), then run."""
        await self.listener.connect()
        self._task = asyncio.create_task(self.listener.run())

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is None:
            return
        await aiopg_fixes.cancel([self._task])

    @property
    def listening(self) -> bool:
        """False while the listening connection is down: no change can be heard then."""
        return self.listener.listening

    @property
    def away(self) -> bool:
        """True while the database is known to be out of reach (see Listener.away)."""
        return self.listener.away

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL server process of the listening connection."""
        return self.listener.backend_pid

    def subscribe(self, callback: Subscriber) -> "Subscription":
        """Call `callback(question_id)` per changed poll, `callback(None)` when anything may
        have changed (changes lost, listening again, a TRUNCATE), until the subscription ends."""
        return Subscription(self._subscribers, callback)

    def changed(self, question_ids: Iterable[int] | None) -> None:
        """These polls changed (None: any may have); every subscriber hears it now."""
        ids: list[int | None] = [None] if question_ids is None else list(question_ids)
        for callback in list(self._subscribers):
            for question_id in ids:
                try:
                    callback(question_id)
                except Exception:
                    # One subscriber's fault must not keep the news from the others.
                    log.exception("changes: a subscriber failed on poll %s", question_id)

    @contextlib.asynccontextmanager
    async def transaction(self, conn: Any) -> AsyncIterator[set[int]]:
        """A transaction on `conn`; once it commits, every subscriber hears of the polls added to
        the set it yields, so this process's next page shows them without waiting for PostgreSQL."""
        changed: set[int] = set()
        try:
            async with conn.begin():
                yield changed
        except BaseException as exc:
            # The connection failed before the commit's answer: it may have committed, and
            # telling of a poll that did not change costs only a read.
            if changed and connections.connection_lost(exc):
                self.changed(changed)
            raise
        if changed:
            self.changed(changed)

    def _gap(self) -> None:
        self.changed(None)


class Subscription:
    """A subscriber's place on the bus, given up by `cancel()` or at the end of a `with` block."""

    def __init__(self, subscribers: list[Subscriber], callback: Subscriber) -> None:
        self._subscribers = subscribers
        self._callback = callback
        subscribers.append(callback)

    def cancel(self) -> None:
        if self._callback in self._subscribers:
            self._subscribers.remove(self._callback)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()
