"""Live results: each watched poll's counters, fanned out to its WebSockets on every change.
A subscriber of the bus of changes: at most one read and one frame per poll per window, built
once for every watcher; those who may not see counts get a frame with none.
"""

import asyncio
import fcntl
import json
import logging
import socket
import struct
import sys
import termios
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

import psycopg2
from aiohttp import WSCloseCode, web
from aiopg.sa import Engine

from .. import metrics
from ..store import aiopg_fixes, changes, connections, polls, rules
from ..web import aiohttp_private

log = logging.getLogger(__name__)

# Bytes a watcher may have waiting (in our transport's buffer, and in the kernel's send queue
# unsent or unacknowledged) before it is dropped: docs/live-results.md. Under asyncio's 64 KiB
# high-water mark, so a send never has to wait for a slow reader. The kernel's part must
# count: its send buffer grows by itself, and would hide a reader that never reads.
MAX_BACKLOG = 32 * 1024
SWEEP_S = 1.0  # how often watchers are pinged when due, and unanswered pings looked for
# Linux tells a socket's unsent and unacknowledged bytes (SIOCOUTQ); elsewhere only ours count.
KERNEL_QUEUE = termios.TIOCOUTQ if sys.platform == "linux" else None
# SO_LINGER on with no time: closing resets the connection, so the kernel drops what waits
# for a dropped watcher at once instead of trying to deliver it to a peer that does not read.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)
SEND_SLICE = 1000  # watchers written to between two yields to the event loop
CLOSES_AT_MARGIN = 0.05  # seconds after closes_at before re-reading, so the database agrees


class Watcher:
    """One open WebSocket watching one poll."""

    __slots__ = (
        "active",
        "fd",
        "is_maker",
        "ping_due",
        "pinged_at",
        "question_id",
        "transport",
        "voted",
        "ws",
    )

    def __init__(
        self,
        question_id: int,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        voted: bool = False,
        is_maker: bool = False,
    ) -> None:
        self.question_id = question_id
        self.ws = ws
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self.fd = -1 if sock is None else sock.fileno()
        self.voted = voted  # its browser had voted in the poll when it joined
        self.is_maker = is_maker  # the maker's manage page
        self.active = True
        self.ping_due = 0.0  # loop time of its next ping (set on joining)
        self.pinged_at: float | None = None  # loop time of the ping it has not answered yet

    def sees_counts(self, counts: polls.LiveCounts) -> bool:
        return rules.may_see_counts(counts, self.voted, self.is_maker)

    def backlog(self) -> int:
        """Bytes written to it that its peer has not taken: in our buffer and the kernel's.
        Only while the transport is open: its socket (and so `fd`) is closed after that."""
        waiting = self.transport.get_write_buffer_size()
        if KERNEL_QUEUE is not None and self.fd >= 0:
            waiting += int.from_bytes(fcntl.ioctl(self.fd, KERNEL_QUEUE, b"\0\0\0\0"), sys.byteorder)
        return waiting


# A ranked poll's count, as a digest of what its tables show (web/ranked.live_version).
RankedVersion = Callable[[int], Awaitable[str]]


def encode(
    question_id: int, counts: polls.LiveCounts | None, hidden: bool = False, ranked: str | None = None
) -> str:
    """The frame for one poll: its counters (or, `hidden`, only its choices), or that it is gone
    (deleted, or `removed` by the site's operator). A ranked poll's also carries its count's
    version (`ranked`)."""
    if counts is None:
        return json.dumps({"question_id": question_id, "deleted": True})
    if counts.removed:
        return json.dumps({"question_id": question_id, "deleted": True, "removed": True})
    if hidden:
        return json.dumps(
            {
                "question_id": question_id,
                "closed": counts.closed,
                "hidden": True,
                "choices": [{"id": c} for c, _, _ in counts.choices],
            }
        )
    frame = {
        "question_id": question_id,
        "total": sum(votes for _, votes, _ in counts.choices),
        "closed": counts.closed,
        "choices": [{"id": c, "votes": v, "percent": p} for c, v, p in counts.choices],
    }
    if counts.if_need_be is not None:  # a date poll: any answer or new row changes its frame
        frame["participants"] = counts.participants
        for option, maybe in zip(frame["choices"], counts.if_need_be, strict=True):
            option["if_need_be"] = maybe
    if ranked is not None:
        frame["ranked"] = ranked
    return json.dumps(frame)


class Live:
    """The process's watchers, by poll; `changed` is its subscription to the bus of changes."""

    def __init__(
        self,
        engine: Engine,
        listening: Callable[[], bool],
        *,
        window_ms: int,
        max_watchers: int,
        heartbeat_s: float,
        ranked_version: RankedVersion | None = None,
    ) -> None:
        self.engine = engine
        self.ranked_version = ranked_version
        self.listening = listening  # False while no change can be heard
        self.window = window_ms / 1000
        self.max_watchers = max_watchers
        self.heartbeat = heartbeat_s
        self.count = 0  # watchers open in this process, joining ones included
        self._watchers: dict[int, set[Watcher]] = {}
        self._joining: dict[int, list[Watcher]] = {}
        self._dirty: set[int] = set()
        self._not_before: dict[int, float] = {}  # poll -> earliest time of its next broadcast
        # poll -> {hidden?: the last frame its watchers of that kind got}
        self._sent: dict[int, dict[bool, bytes]] = {}
        self._closes_at: dict[int, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._shutting_down = False

    # -- the app's lifetime -------------------------------------------------------------

    async def start(self) -> None:
        """Start the one reader that sends snapshots and updates, and the pings."""
        self._spawn(self._flush_forever())
        self._spawn(self._sweep_forever())

    async def stop(self) -> None:
        """Stop the reader (after `close_all`)."""
        await aiopg_fixes.cancel(self._tasks)
        for timer in self._closes_at.values():
            timer.cancel()

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every watcher's socket (1001 on shutdown) and take no new ones."""
        self._shutting_down = True
        watchers = [w for ws in self._watchers.values() for w in ws]
        watchers += [w for ws in self._joining.values() for w in ws]
        await asyncio.gather(
            *(w.ws.close(code=code, message=b"Server shutdown") for w in watchers), return_exceptions=True
        )

    # -- watchers -------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """True when this process takes no more watchers (at its limit, or shutting down)."""
        return self._shutting_down or self.count >= self.max_watchers

    def join(self, watcher: Watcher) -> None:
        """Start watching: the snapshot comes from the reader task, then every update."""
        question_id = watcher.question_id
        watcher.ping_due = asyncio.get_running_loop().time() + self.heartbeat
        self._joining.setdefault(question_id, []).append(watcher)
        self.count += 1
        metrics.watchers(+1)
        self._wake.set()

    def leave(self, watcher: Watcher) -> None:
        if not watcher.active:
            return
        watcher.active = False
        self.count -= 1
        metrics.watchers(-1)
        question_id = watcher.question_id
        watching = self._watchers.get(question_id)
        if watching is not None:
            watching.discard(watcher)
            if not watching:
                del self._watchers[question_id]
                self._sent.pop(question_id, None)
                timer = self._closes_at.pop(question_id, None)
                if timer is not None:
                    timer.cancel()
        joining = self._joining.get(question_id)
        if joining is not None and watcher in joining:
            joining.remove(watcher)
            if not joining:
                del self._joining[question_id]

    def answered(self, watcher: Watcher) -> None:
        """Its pong came: it has read up to our ping. The next ping is due a heartbeat from now."""
        if watcher.pinged_at is not None:  # a pong nobody asked for proves nothing
            watcher.pinged_at = None
            watcher.ping_due = asyncio.get_running_loop().time() + self.heartbeat

    def drop(self, watcher: Watcher, reason: str, detail: str) -> None:
        """Drop a slow watcher: its socket is reset, so nothing waits for it in this process or
        the kernel. Its page reconnects and takes a fresh snapshot."""
        log.info("live results: dropped a slow watcher of poll %s (%s)", watcher.question_id, detail)
        metrics.watcher_dropped(reason)
        self.leave(watcher)
        transport = watcher.transport
        if not transport.is_closing():
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        transport.abort()

    # -- changes --------------------------------------------------------------------------

    def changed(self, question_id: int | None) -> None:
        """This poll changed: its watchers get an update. None: anything may have changed,
        so once changes flow again every watched poll is sent again, even if unchanged."""
        if question_id is not None:
            if question_id in self._watchers:
                self._dirty.add(question_id)
                self._wake.set()
            return
        if not self.listening():
            return  # the listener's "back" brings the resync
        self._dirty.update(self._watchers)
        self._not_before.clear()
        self._sent.clear()
        self._wake.set()

    # -- reading and sending --------------------------------------------------------------

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._flush(loop)
            except Exception:
                # A fault of ours: log it and go on; the failed round is sent again.
                log.exception("live results: an update failed; sending it again")
                await asyncio.sleep(changes.RECONNECT_MIN)

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until something is due, then send it: one round of the fan-out."""
        timeout = self._next_flush(loop.time())
        if timeout != 0:
            # A timer rather than `asyncio.wait_for`, which on Python 3.11 can swallow the
            # shutdown's cancellation when a wake-up comes at the same moment.
            timer = None if timeout is None else loop.call_later(timeout, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()
        self._wake.clear()
        now = loop.time()
        due = {q for q in self._dirty if self._not_before.get(q, 0) <= now}
        self._dirty -= due
        for question_id, at in list(self._not_before.items()):
            if at <= now:
                del self._not_before[question_id]
        for question_id in due:
            self._not_before[question_id] = now + self.window
        joining, self._joining = self._joining, {}
        try:
            await self._publish(due, joining)
        except Exception:
            self._again(due, joining)
            raise

    def _again(self, due: set[int], joining: dict[int, list[Watcher]]) -> None:
        """A round that was not sent: its polls are due again, and joiners not yet served wait."""
        for question_id, watchers in joining.items():
            served = self._watchers.get(question_id, ())
            waiting = [w for w in watchers if w.active and w not in served]
            if waiting:
                self._joining.setdefault(question_id, []).extend(waiting)
        self._dirty |= {q for q in due if q in self._watchers}
        self._sent.clear()  # which frame each watcher has is no longer known: send anew

    def _next_flush(self, now: float) -> float | None:
        """Seconds until something is due: 0 now, None when only a change can start work."""
        if self._joining:
            return 0
        if not self._dirty:
            return None
        return max(0.0, min(self._not_before.get(q, 0) for q in self._dirty) - now)

    async def _publish(self, due: set[int], joining: dict[int, list[Watcher]]) -> None:
        """One read for every poll concerned, then each poll's frame to its watchers."""
        wanted = {q for q in due if q in self._watchers} | set(joining)
        if not wanted:
            return
        try:
            async with connections.connection(self.engine) as conn:
                found = await polls.live_counts(conn, wanted)
            versions = await self._ranked_versions(found)
        except (psycopg2.Error, TimeoutError) as exc:
            # The database is away (refused, or silent past `database.timeout` across a lost
            # network): the listener notices too and resyncs once it is back.
            log.warning("live results: cannot read polls (%s)", str(exc).strip()[:200] or "timeout")
            self._again(due, joining)
            await asyncio.sleep(changes.RECONNECT_MIN)
            return
        for question_id in wanted:
            counts = found.get(question_id)
            frames = _Frames(question_id, counts, versions.get(question_id))
            watching = self._watchers.get(question_id)
            sent = self._sent.get(question_id, {})
            targets: dict[bool, list[Watcher]] = {}
            # A change this process made is heard twice (its own commit, then PostgreSQL's NOTIFY):
            # its watchers need the frame once.
            if watching and question_id in due:
                for hidden, group in _by_kind(watching, counts).items():
                    if sent.get(hidden) != frames[hidden]:
                        targets[hidden] = group
                        sent[hidden] = frames[hidden]
            new = [w for w in joining.get(question_id, ()) if w.active]
            for hidden, group in _by_kind(new, counts).items():
                if not watching:
                    sent[hidden] = frames[hidden]  # now every watcher of it has this frame
                targets.setdefault(hidden, []).extend(group)
            if new:
                self._watchers.setdefault(question_id, set()).update(new)
            if question_id in self._watchers:
                self._sent[question_id] = sent
            for hidden, group in targets.items():
                await self._send(group, frames[hidden])
            if counts is None or counts.removed:
                self._gone(question_id)
            else:
                self._schedule_close(question_id, counts)

    async def _ranked_versions(self, found: dict[int, polls.LiveCounts]) -> dict[int, str]:
        """Each ranked poll's count version: counted (or taken from the cache) once per frame."""
        if self.ranked_version is None:
            return {}
        return {
            question_id: await self.ranked_version(question_id)
            for question_id, counts in found.items()
            if counts.kind == "ranked"
        }

    async def _send(self, watchers: list[Watcher], frame: bytes) -> None:
        """Write one frame, built once, to each watcher's socket, never waiting for any.

        Each write is about 10 us (mostly the kernel's); every `SEND_SLICE` watchers the
        loop lets other requests in, so a poll with 10,000 watchers does not stall them.
        """
        for sent, watcher in enumerate(watchers, 1):
            if sent % SEND_SLICE == 0:
                await asyncio.sleep(0)
            transport = watcher.transport
            if transport.is_closing() or watcher.ws.closed:
                continue  # its handler is finishing and will leave
            backlog = watcher.backlog()
            if backlog > MAX_BACKLOG:
                self.drop(watcher, "backlog", f"{backlog} bytes waiting")
                continue
            aiohttp_private.write_frame(transport, frame)

    async def _sweep_forever(self) -> None:
        """Every SWEEP_S, ping the watchers due and drop those that left a ping unanswered."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                await self._sweep(loop.time())
            except Exception:
                # A fault of ours: log it and go on; the next sweep looks at every watcher again.
                log.exception("live results: a sweep failed")

    async def _sweep(self, now: float) -> None:
        """A watcher that does not answer a ping within half a heartbeat is not reading: its
        peer's kernel may still take bytes for a while, but the page is not reading them."""
        watchers = [w for group in self._watchers.values() for w in group]
        watchers += [w for group in self._joining.values() for w in group]
        patience = self.heartbeat / 2
        for watcher in watchers:
            transport = watcher.transport
            if transport.is_closing() or watcher.ws.closed:
                continue  # its handler is finishing and will leave
            if watcher.pinged_at is None:
                if now >= watcher.ping_due:
                    watcher.pinged_at = now  # first: its pong may come while the ping is sent
                    await watcher.ws.ping()
            elif now - watcher.pinged_at > patience:
                self.drop(watcher, "no_pong", f"no pong {now - watcher.pinged_at:.1f} s after a ping")

    def _gone(self, question_id: int) -> None:
        """The poll was deleted, unpublished or hidden by the operator: its watchers were told;
        close them. Hiding reaches every process's hub as any change does, on the bus of changes."""
        for watcher in list(self._watchers.get(question_id, ())):
            self.leave(watcher)
            self._spawn(watcher.ws.close(message=b"Poll deleted"))

    def _schedule_close(self, question_id: int, counts: polls.LiveCounts) -> None:
        """Re-read a watched open poll when its `closes_at` passes: no change is announced then."""
        timer = self._closes_at.pop(question_id, None)
        if timer is not None:
            timer.cancel()
        if counts.closed or counts.closes_at is None or question_id not in self._watchers:
            return
        delay = (counts.closes_at - datetime.now(UTC)).total_seconds() + CLOSES_AT_MARGIN
        loop = asyncio.get_running_loop()
        self._closes_at[question_id] = loop.call_later(max(delay, 0), self.changed, question_id)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Frames(dict):
    """One poll's frames by kind (hidden or not), each built once, when first asked for."""

    def __init__(self, question_id: int, counts: polls.LiveCounts | None, ranked: str | None = None) -> None:
        super().__init__()
        self.question_id = question_id
        self.counts = counts
        self.ranked = ranked

    def __missing__(self, hidden: bool) -> bytes:
        text = encode(self.question_id, self.counts, hidden, self.ranked)
        frame = self[hidden] = aiohttp_private.text_frame(text)
        return frame


def _by_kind(watchers: Iterable[Watcher], counts: polls.LiveCounts | None) -> dict[bool, list[Watcher]]:
    """Watchers by the frame they get: False, the counts; True, the choices without numbers.

    When everyone may see the counts (the usual case) no watcher is asked one by one.
    """
    if counts is None or counts.removed or rules.may_see_counts(counts, voted=False, is_maker=False):
        return {False: list(watchers)} if watchers else {}
    kinds: dict[bool, list[Watcher]] = {}
    for watcher in watchers:
        kinds.setdefault(not watcher.sees_counts(counts), []).append(watcher)
    return kinds


live_key = web.AppKey("live", Live)
