"""Live-results benchmark: many watchers of one poll, how fast a vote reaches the last one,
and how they fare when PostgreSQL ends the app's connections mid-run.

    .venv/bin/python bench/watchers.py                      # 1,000, 5,000 and 10,000 watchers
    .venv/bin/python bench/watchers.py --watchers 2000 --votes 5 --markdown out.md
    .venv/bin/python bench/watchers.py --no-terminate       # without ending the connections
    .venv/bin/python bench/watchers.py --uvloop   # app and generator on uvloop ('.[uvloop]')

Not a pytest test. For each number of watchers it starts the real app
(`python -m aiohttpdemo_polls`, on a free port of 127.0.0.1) on a real PostgreSQL: the
benchmark database of `config/polls_bench.yaml` on the embedded server unless `-c` or
`POLLS_DATABASE_URL` says otherwise (`init_db.py` creates whatever is missing), adds a poll
of its own, opens that many WebSockets to `/poll/{id}/live` from this one process, and then:

- casts votes one at a time with a `votes.VoteBatcher` (the app's own vote writer; the
  schema's triggers send the notice), spaced wider than the coalescing window, and times
  each from the moment its COMMIT returns to the moment the *last* watcher has a frame
  showing it;
- after half of them PostgreSQL ends every client connection to the database
  (`pg_terminate_backend`, as a failover or restart does; `--no-terminate` skips it): the
  next vote, cast as soon as those backends are gone, times the recovery (until the last
  watcher shows it), and the votes after it are timed as before;
- reads the server's resident memory before and after the watchers connect: the
  difference divided by the watchers is the memory each costs;
- counts errors: watchers the server closed, votes not counted, updates some watcher never
  received, and "Traceback", "Task exception was never retrieved" or "filedescriptor out of
  range" in the app's log. Any error makes it exit 1.

The watchers are minimal asyncio protocols (handshake, frame parsing, pong), so the load
generator spends as little as possible of the CPU it shares with the server. A fresh
server per size keeps one size's memory from hiding the next one's. The poll is deleted
at the end. `measure()` is the entry point for other scripts.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiopg.sa
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttpdemo_polls import settings  # noqa: E402
from aiohttpdemo_polls.store import pgserver, schema  # noqa: E402
from aiohttpdemo_polls.store.changes import Changes  # noqa: E402
from aiohttpdemo_polls.store.votes import VoteBatcher, VoteNotCounted, VoteOutcome  # noqa: E402
from bench import faults  # noqa: E402
from bench.processes import cpu_seconds, free_port, rss_kib  # noqa: E402

# The benchmark's own database (shared with bench/run.py), not the development data.
BENCH_CONFIG = ROOT / "config" / "polls_bench.yaml"
CONNECT_BATCH = 250  # connections opened at once: under the server's listen backlog
VOTE_GAP = 0.5  # seconds between votes, wider than the 100 ms coalescing window
TIMEOUT = 30.0
WARM_WATCHERS = 10


class Watcher(asyncio.Protocol):
    """One WebSocket client that records when each text frame arrived, and little else."""

    def __init__(self, host: str, path: str, board: "Board") -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.board = board
        self.buffer = bytearray()
        self.upgraded = False
        self.frames: list[tuple[float, bytes]] = []
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.board.lost += 1
        self.board.changed()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"upgrade refused: {bytes(buffer[:60])!r}")
            del buffer[: end + 4]
            self.upgraded = True
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = struct.unpack_from(">H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = struct.unpack_from(">Q", buffer, 2)[0], 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                self.frames.append((now, payload))
                self.board.frames += 1
                self.board.changed()
            elif opcode == 0x9:  # ping: answer with a masked pong, as a client must
                mask = os.urandom(4)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    def first_showing(self, total: int, start: int) -> float | None:
        """When the first frame since `start` that shows `total` votes or more arrived. Totals
        only grow, so frames are read from the newest back: usually one is parsed."""
        found = None
        for at, payload in reversed(self.frames[start:]):
            if json.loads(payload).get("total", -1) < total:
                break
            found = at
        return found


class Board:
    """Wakes the measuring code when watchers have received frames or closed."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.frames = 0  # text frames received by all watchers: a cheap condition to wait on
        self.lost = 0  # watchers whose connection ended

    def changed(self) -> None:
        self.event.set()

    async def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.event.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"watchers did not get their frames in time ({self.frames} so far)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), min(left, 0.5))


class Crowd:
    """The watchers of one poll's live results on one app, opened from this process."""

    def __init__(self, port: int, question_id: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.path = f"/poll/{question_id}/live"
        self.board = Board()
        self.opened: list[Watcher] = []

    async def connect(self, count: int) -> list[Watcher]:
        """Open `count` watchers, CONNECT_BATCH at a time, each once it has its first frame."""
        loop = asyncio.get_running_loop()
        board, watchers = self.board, []
        for first in range(0, count, CONNECT_BATCH):
            batch = [Watcher(self.host, self.path, board) for _ in range(min(CONNECT_BATCH, count - first))]
            self.opened += batch
            target = board.frames + len(batch)
            await asyncio.gather(
                *(loop.create_connection(lambda w=w: w, "127.0.0.1", self.port) for w in batch)
            )
            watchers += batch
            await board.until(lambda target=target: board.frames >= target)
            if not all(w.frames for w in batch):
                raise RuntimeError("some watchers got no snapshot while others got two")
        return watchers

    def abort(self) -> None:
        for watcher in self.opened:
            if watcher.transport is not None:
                watcher.transport.abort()


@dataclass
class Errors:
    """What went wrong in one size's run; issue 19 wants none of it."""

    dropped: int = 0  # watchers the server closed during the run
    not_counted: int = 0  # votes the batcher did not answer COUNTED
    missed: int = 0  # updates never received, one per watcher and vote
    logged: int = 0  # faults.LOG_ERRORS found in the app's log

    @property
    def total(self) -> int:
        return self.dropped + self.not_counted + self.missed + self.logged

    def __str__(self) -> str:
        return (
            f"{self.dropped} watchers dropped, {self.not_counted} votes not counted, "
            f"{self.missed} updates missed, {self.logged} errors in the app's log"
        )


class Votes:
    """The benchmark's votes on its poll, each timed from its commit to the last watcher."""

    def __init__(
        self, url: str, question_id: int, choice_id: int, watchers: list[Watcher], board: Board, total: int
    ) -> None:
        self.url, self.question_id, self.choice_id = url, question_id, choice_id
        self.watchers, self.board = watchers, board
        self.total = total  # the poll's votes as the watchers should show them
        self.delays: list[float] = []  # ms, of the votes every watcher got
        self.cast = 0
        self.errors = Errors()

    async def run(self, count: int, terminate: bool) -> tuple[float | None, int]:
        """`count` timed votes; with `terminate`, PostgreSQL ends every connection of the app
        after half of them and the next vote times the recovery. Returns the recovery (ms;
        None without one) and how many connections were ended."""
        half = count // 2 if terminate else count
        async with self.writer() as batcher:
            await self.timed(batcher, half)
        if not terminate:
            return None, 0
        ended = await asyncio.to_thread(faults.end_connections, self.url)
        gone = time.perf_counter()
        # Ours were closed before, so PostgreSQL ended only the app's; the writer is made anew.
        async with self.writer() as batcher:
            times = await self.vote(batcher)
            recovery = None if times is None else (times[1] - gone) * 1000
            await self.timed(batcher, count - half)
        return recovery, ended

    @contextlib.asynccontextmanager
    async def writer(self) -> AsyncIterator[VoteBatcher]:
        """The app's own vote writer, on an engine of ours. Its bus of changes has no subscriber:
        the watchers' app hears of each vote from PostgreSQL, as from another process."""
        async with aiopg.sa.create_engine(self.url, minsize=1, maxsize=2) as engine:
            yield VoteBatcher(engine, Changes(self.url))

    async def timed(self, batcher: VoteBatcher, count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(VOTE_GAP)
            times = await self.vote(batcher)
            if times is not None:
                self.delays.append((times[1] - times[0]) * 1000)

    async def vote(self, batcher: VoteBatcher) -> tuple[float, float] | None:
        """Cast one vote from a new voter: (its commit, the last watcher's receipt), as
        perf_counter times; None when it was not counted or a watcher never had it."""
        seen = [len(w.frames) for w in self.watchers]
        frames = self.board.frames
        self.cast += 1
        try:
            outcome = await batcher.cast(self.question_id, [self.choice_id], f"bench-{os.urandom(8).hex()}")
        except VoteNotCounted:
            outcome = None
        committed = time.perf_counter()
        if outcome is not VoteOutcome.COUNTED:
            self.errors.not_counted += 1
            return None
        self.total += 1
        last = await self.last_receipt(seen, frames)
        return None if last is None else (committed, last)

    async def last_receipt(self, seen: list[int], frames: int) -> float | None:
        """When the last watcher had a frame showing `self.total`; None if some had none
        within TIMEOUT (each is an error). A closed watcher is no longer waited for."""
        board, total = self.board, self.total
        pending = [i for i, w in enumerate(self.watchers) if not w.lost]
        deadline, last = time.monotonic() + TIMEOUT, 0.0
        while pending:
            # Frames a resync sends (after a reconnect) show older totals: the count only
            # says when to look, the frames' totals decide.
            gate, lost = frames + len(pending), board.lost
            try:
                await board.until(
                    lambda gate=gate, lost=lost: board.frames >= gate or board.lost > lost,
                    deadline - time.monotonic(),
                )
            except TimeoutError:
                self.errors.missed += len(pending)
                return None
            frames, waiting = board.frames, []
            for i in pending:
                watcher = self.watchers[i]
                at = watcher.first_showing(total, seen[i])
                if at is not None:
                    last = max(last, at)
                elif not watcher.lost:
                    waiting.append(i)
            pending = waiting
        return last


@dataclass
class Result:
    watchers: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    kib_per_watcher: float
    connect_s: float
    server_cpu_ms: float  # server CPU time per vote (read + fan-out + anything else it did)
    client_cpu_ms: float  # this load generator's CPU time per vote
    load: float  # 1-minute load average at the end: other work on the machine
    recovery_ms: float | None = None  # None: no termination, or no recovery
    ended: int = 0  # the app's connections PostgreSQL ended
    errors: Errors = field(default_factory=Errors)


def raise_open_files_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_app(config_path: str, url: str, port: int, log: Path) -> subprocess.Popen:
    environ = {**os.environ, "POLLS_DATABASE_URL": url, "POLLS_PORT": str(port), "POLLS_HOST": "127.0.0.1"}
    environ["POLLS_METRICS_PORT"] = str(free_port())  # the default one may be an app's already serving
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aiohttpdemo_polls", "-c", config_path],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start:\n{log.read_text(errors='replace')}") from None
            time.sleep(0.05)


def stop_app(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def make_poll(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url, future=True)
    with engine.begin() as conn:
        question_id = conn.execute(
            schema.question.insert()
            .values(question_text="Benchmark: live watchers")
            .returning(schema.question.c.id)
        ).scalar_one()
        choice_id = conn.execute(
            schema.choice.insert()
            .values([{"question_id": question_id, "choice_text": t} for t in ("Yes", "No")])
            .returning(schema.choice.c.id)
        ).first()[0]
    engine.dispose()
    return question_id, choice_id


def delete_poll(url: str, question_id: int) -> None:
    engine = sa.create_engine(url, future=True)
    with engine.begin() as conn:
        conn.execute(schema.question.delete().where(schema.question.c.id == question_id))
    engine.dispose()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def warm_up(crowd: Crowd) -> int:
    """Take the server's code paths once before its memory is read; returns the poll's votes."""
    warm = await crowd.connect(WARM_WATCHERS)
    total = json.loads(warm[0].frames[0][1])["total"]
    for watcher in warm:
        watcher.transport.close()
    await asyncio.sleep(0.5)  # let the server notice the closes before measuring
    return total


async def measure_one(
    config_path: str,
    url: str,
    count: int,
    votes: int,
    workdir: Path,
    question_id: int,
    choice_id: int,
    terminate: bool = True,
) -> Result:
    port = free_port()
    log = workdir / f"app-{count}.log"
    process = start_app(config_path, url, port, log)
    crowd = Crowd(port, question_id)
    try:
        total = await warm_up(crowd)
        baseline = rss_kib(process.pid)
        started = time.perf_counter()
        watchers = await crowd.connect(count)
        connect_s = time.perf_counter() - started
        memory = rss_kib(process.pid) - baseline

        ballots = Votes(url, question_id, choice_id, watchers, crowd.board, total)
        server_cpu, client_cpu = cpu_seconds(process.pid), time.process_time()
        recovery, ended = await ballots.run(votes, terminate)
        server_cpu = cpu_seconds(process.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        ballots.errors.dropped = sum(w.lost for w in watchers)
    except BaseException:
        print(f"failed with {len(crowd.opened)} watchers opened; server log:", file=sys.stderr)
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        crowd.abort()
        stop_app(process)
    text = log.read_text(errors="replace")
    ballots.errors.logged = sum(faults.log_errors(text).values())
    if ballots.errors.logged:
        print(f"errors in the app's log ({count:,} watchers):\n{faults.error_lines(text)}", file=sys.stderr)
    delays = ballots.delays or [math.nan]  # no vote reached every watcher: the errors say why
    return Result(
        watchers=count,
        p50_ms=statistics.median(delays),
        p99_ms=percentile(delays, 0.99),
        max_ms=max(delays),
        kib_per_watcher=memory / count,
        connect_s=connect_s,
        server_cpu_ms=server_cpu / ballots.cast * 1000,
        client_cpu_ms=client_cpu / ballots.cast * 1000,
        load=os.getloadavg()[0],
        recovery_ms=recovery,
        ended=ended,
        errors=ballots.errors,
    )


async def measure(config_path: str, counts: list[int], votes: int, terminate: bool = True) -> list[Result]:
    """Measure each number of watchers on a fresh server; the poll is removed afterwards."""
    raise_open_files_limit()
    # Creates the database, tables and sample polls only where missing (idempotent).
    subprocess.run(
        [sys.executable, "init_db.py", "-c", config_path], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    config = settings.load(config_path, os.environ)
    url = pgserver.configured_url(config)
    question_id, choice_id = make_poll(url)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="polls-bench-") as workdir:
            for count in counts:
                results.append(
                    await measure_one(
                        config_path, url, count, votes, Path(workdir), question_id, choice_id, terminate
                    )
                )
                print(format_row(results[-1]), file=sys.stderr, flush=True)
                if results[-1].errors.total:
                    print(f"  errors: {results[-1].errors}", file=sys.stderr, flush=True)
    finally:
        delete_poll(url, question_id)
    return results


HEADER = (
    "| watchers | vote → last watcher p50 | p99 | max | memory per watcher "
    "| server CPU per vote | client CPU per vote | connect all | recovery | connections ended "
    "| errors | load avg |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def format_row(result: Result) -> str:
    recovery = "-" if result.recovery_ms is None else f"{result.recovery_ms:.0f} ms"
    return (
        f"| {result.watchers:,} | {result.p50_ms:.0f} ms | {result.p99_ms:.0f} ms | {result.max_ms:.0f} ms "
        f"| {result.kib_per_watcher:.1f} KiB | {result.server_cpu_ms:.0f} ms | {result.client_cpu_ms:.0f} ms "
        f"| {result.connect_s:.1f} s | {recovery} | {result.ended} | {result.errors.total} "
        f"| {result.load:.1f} |"
    )


def loop_name() -> str:
    return "uvloop" if os.environ.get("POLLS_UVLOOP") == "1" else "asyncio"


def markdown(results: list[Result], votes: int, terminate: bool = True) -> str:
    rows = "\n".join(format_row(r) for r in results)
    cut = (
        "PostgreSQL ended every client connection of the app once, after half the votes; "
        "recovery = from those backends gone to the last watcher showing the next vote, cast at "
        "once (not among the votes in p50/p99). "
        if terminate
        else "No connection was ended (--no-terminate). "
    )
    failed = "".join(f"Errors with {r.watchers:,} watchers: {r.errors}.\n" for r in results if r.errors.total)
    return (
        f"{HEADER}\n{rows}\n\nEvent loop: {loop_name()}. {votes} votes per size, {VOTE_GAP} s apart; "
        "delay from the vote's COMMIT "
        "to the last watcher's receipt; memory = server RSS growth / watchers; CPU = time used "
        "per vote while watchers got it (the server and this generator share the machine's cores). "
        f"{cut}Errors = watchers dropped + votes not counted + updates missed (per watcher and vote) "
        f"+ {', '.join(repr(e) for e in faults.LOG_ERRORS)} in the app's log.\n{failed}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    settings.config_argument(parser)
    parser.set_defaults(config=str(BENCH_CONFIG))
    parser.add_argument("--watchers", default="1000,5000,10000", help="comma-separated sizes")
    parser.add_argument("--votes", type=int, default=20, help="votes timed per size")
    parser.add_argument(
        "--no-terminate",
        dest="terminate",
        action="store_false",
        help="do not have PostgreSQL end the app's connections mid-run",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument(
        "--uvloop", action="store_true", help="run the app (POLLS_UVLOOP=1) and this generator on uvloop"
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.watchers.split(",")]
    if args.uvloop:
        import uvloop

        os.environ["POLLS_UVLOOP"] = "1"
        results = uvloop.run(measure(args.config, counts, args.votes, args.terminate))
    else:
        results = asyncio.run(measure(args.config, counts, args.votes, args.terminate))
    table = markdown(results, args.votes, args.terminate)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 1 if any(r.errors.total for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
