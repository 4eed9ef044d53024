"""Live-results benchmark: many watchers of one poll, how fast a vote reaches the last one.

    .venv/bin/python bench/watchers.py                      # 1,000, 5,000 and 10,000 watchers
    .venv/bin/python bench/watchers.py --watchers 2000 --votes 5 --markdown out.md
    .venv/bin/python bench/watchers.py --uvloop   # app and generator on uvloop ('.[uvloop]')

Not a pytest test. For each number of watchers it starts the real app
(`python -m aiohttpdemo_polls`, on a free port of 127.0.0.1) on a real PostgreSQL: the
benchmark database of `config/polls_bench.yaml` on the embedded server unless `-c` or
`POLLS_DATABASE_URL` says otherwise (`init_db.py` creates whatever is missing), adds a poll
of its own, opens that many WebSockets to `/poll/{id}/live` from this one process, and then:

- casts votes one at a time with a `votes.VoteBatcher` (the app's own vote writer; the
  schema's triggers send the notice), spaced wider than the coalescing window, and times
  each from the moment its COMMIT returns to the moment the *last* watcher has the update;
- reads the server's resident memory before and after the watchers connect: the
  difference divided by the watchers is the memory each costs.

The watchers are minimal asyncio protocols (handshake, frame parsing, pong), so the load
generator spends as little as possible of the CPU it shares with the server. A fresh
server per size keeps one size's memory from hiding the next one's. The poll is deleted
at the end. `measure()` is the entry point for other scripts (bench/run.py).
"""

import argparse
import asyncio
import base64
import contextlib
import json
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
from dataclasses import dataclass
from pathlib import Path

import aiopg.sa
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttpdemo_polls import db, pgserver, settings  # noqa: E402
from aiohttpdemo_polls.votes import VoteBatcher, VoteOutcome  # noqa: E402

# The benchmark's own database (shared with bench/run.py), not the development data.
BENCH_CONFIG = ROOT / "config" / "polls_bench.yaml"
CONNECT_BATCH = 250  # connections opened at once: under the server's listen backlog
VOTE_GAP = 0.5  # seconds between votes, wider than the 100 ms coalescing window
TIMEOUT = 30.0


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


class Board:
    """Wakes the measuring code when watchers have received enough frames."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.frames = 0  # text frames received by all watchers: a cheap condition to wait on

    def changed(self) -> None:
        self.event.set()

    async def until(self, condition, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.event.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"watchers did not get their frames in time ({self.frames} so far)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), min(left, 0.5))


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            db.question.insert().values(question_text="Benchmark: live watchers").returning(db.question.c.id)
        ).scalar_one()
        choice_id = conn.execute(
            db.choice.insert()
            .values([{"question_id": question_id, "choice_text": t} for t in ("Yes", "No")])
            .returning(db.choice.c.id)
        ).first()[0]
    engine.dispose()
    return question_id, choice_id


def delete_poll(url: str, question_id: int) -> None:
    engine = sa.create_engine(url, future=True)
    with engine.begin() as conn:
        conn.execute(db.question.delete().where(db.question.c.id == question_id))
    engine.dispose()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure_one(
    config_path: str, url: str, count: int, votes: int, workdir: Path, question_id: int, choice_id: int
) -> Result:
    port = free_port()
    process = start_app(config_path, url, port, workdir / f"app-{count}.log")
    loop = asyncio.get_running_loop()
    board = Board()
    watchers: list[Watcher] = []
    path = f"/poll/{question_id}/live"
    host = f"127.0.0.1:{port}"
    try:
        async with aiopg.sa.create_engine(url, minsize=1, maxsize=2) as engine:
            # Warm up the server's code paths, then take its memory as the baseline.
            warm = [Watcher(host, path, board) for _ in range(10)]
            for watcher in warm:
                await loop.create_connection(lambda w=watcher: w, "127.0.0.1", port)
            await board.until(lambda: all(w.frames for w in warm))
            for watcher in warm:
                watcher.transport.close()
            await asyncio.sleep(0.5)  # let the server notice the closes before measuring
            baseline = rss_kib(process.pid)

            started = time.perf_counter()
            for first in range(0, count, CONNECT_BATCH):
                batch = [Watcher(host, path, board) for _ in range(min(CONNECT_BATCH, count - first))]
                target = board.frames + len(batch)
                await asyncio.gather(
                    *(loop.create_connection(lambda w=w: w, "127.0.0.1", port) for w in batch)
                )
                watchers += batch
                await board.until(lambda target=target: board.frames >= target)
                assert all(w.frames for w in batch)
            connect_s = time.perf_counter() - started
            memory = rss_kib(process.pid) - baseline

            delays = []
            server_cpu, client_cpu = cpu_seconds(process.pid), time.process_time()
            batcher = VoteBatcher(engine)
            for number in range(1, votes + 1):
                await asyncio.sleep(VOTE_GAP)
                seen = [len(w.frames) for w in watchers]
                target = board.frames + len(watchers)
                outcome = await batcher.cast(question_id, [choice_id], f"bench-{os.urandom(8).hex()}")
                committed = time.perf_counter()
                assert outcome is VoteOutcome.COUNTED, outcome
                await board.until(lambda target=target: board.frames >= target)
                assert all(len(w.frames) > n for w, n in zip(watchers, seen, strict=True))
                last = max(w.frames[n][0] for w, n in zip(watchers, seen, strict=True))
                delays.append((last - committed) * 1000)
                sample = json.loads(watchers[-1].frames[seen[-1]][1])
                assert sample["total"] >= number, sample
            server_cpu = cpu_seconds(process.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
            if any(w.lost for w in watchers):
                raise RuntimeError("the server dropped watchers during the run")
    except BaseException:
        print(f"failed with {len(watchers)} watchers connected; server log:", file=sys.stderr)
        print((workdir / f"app-{count}.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        for watcher in watchers:
            if watcher.transport is not None:
                watcher.transport.abort()
        stop_app(process)
    return Result(
        watchers=count,
        p50_ms=statistics.median(delays),
        p99_ms=percentile(delays, 0.99),
        max_ms=max(delays),
        kib_per_watcher=memory / count,
        connect_s=connect_s,
        server_cpu_ms=server_cpu / votes * 1000,
        client_cpu_ms=client_cpu / votes * 1000,
        load=os.getloadavg()[0],
    )


async def measure(config_path: str, counts: list[int], votes: int) -> list[Result]:
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
                    await measure_one(config_path, url, count, votes, Path(workdir), question_id, choice_id)
                )
                print(format_row(results[-1]), file=sys.stderr, flush=True)
    finally:
        delete_poll(url, question_id)
    return results


HEADER = (
    "| watchers | vote → last watcher p50 | p99 | max | memory per watcher "
    "| server CPU per vote | client CPU per vote | connect all | load avg |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def format_row(result: Result) -> str:
    return (
        f"| {result.watchers:,} | {result.p50_ms:.0f} ms | {result.p99_ms:.0f} ms | {result.max_ms:.0f} ms "
        f"| {result.kib_per_watcher:.1f} KiB | {result.server_cpu_ms:.0f} ms | {result.client_cpu_ms:.0f} ms "
        f"| {result.connect_s:.1f} s | {result.load:.1f} |"
    )


def loop_name() -> str:
    return "uvloop" if os.environ.get("POLLS_UVLOOP") == "1" else "asyncio"


def markdown(results: list[Result], votes: int) -> str:
    rows = "\n".join(format_row(r) for r in results)
    return (
        f"{HEADER}\n{rows}\n\nEvent loop: {loop_name()}. {votes} votes per size, {VOTE_GAP} s apart; "
        "delay from the vote's COMMIT "
        "to the last watcher's receipt; memory = server RSS growth / watchers; CPU = time used "
        "per vote while watchers got it (the server and this generator share the machine's cores).\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    settings.config_argument(parser)
    parser.set_defaults(config=str(BENCH_CONFIG))
    parser.add_argument("--watchers", default="1000,5000,10000", help="comma-separated sizes")
    parser.add_argument("--votes", type=int, default=20, help="votes timed per size")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument(
        "--uvloop", action="store_true", help="run the app (POLLS_UVLOOP=1) and this generator on uvloop"
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.watchers.split(",")]
    if args.uvloop:
        import uvloop

        os.environ["POLLS_UVLOOP"] = "1"
        results = uvloop.run(measure(args.config, counts, args.votes))
    else:
        results = asyncio.run(measure(args.config, counts, args.votes))
    table = markdown(results, args.votes)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
