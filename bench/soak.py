"""The soak run of bench/run.py (`--soak`): mixed traffic for a minute, then checks.

At once, against one app on the benchmark database, for `--soak-duration` seconds
(default 60): browsing (`GET /`, `GET /poll/{id}`, results) on 176 connections, votes from
new voters spread over the 1000 polls on 64, poll making (`POST /poll/new`, throttled to a
few a second per connection) on 16 (256 connections in all), and 1,000 live-results
WebSockets watching 100 of the voted polls. The app's memory is sampled every second.
Half-way through, PostgreSQL ends every client connection of the app once (as a failover
or restart does: bench/faults.py).

Passes when: no answer was a 5xx; memory at the end is under 10% above memory after the
warm-up (the first quarter); every vote answered 302 is counted and no more; every
choice's counter equals its `vote` rows; no watcher was closed by the server, and each got
an update after the connections were ended; and the app's log holds no "Traceback",
"Task exception was never retrieved" or "filedescriptor out of range". It exits 1 otherwise.
"""

import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import faults
from bench.load import (
    FORM,
    WRK,
    Data,
    errors_of,
    lua_writes,
    mismatched_everywhere,
    settled_vote_state,
    vote_state,
    wrk,
)

BROWSE_CONNECTIONS = 176
VOTE_CONNECTIONS = 64
CREATE_CONNECTIONS = 16

WATCHERS = 1000
WATCHED_POLLS = 100
CREATE_DELAY_MS = 250  # per connection: ~64 new polls a second in all

LUA_BROWSE = r"""
local lo, hi = %(lo)d, %(hi)d
n5xx, n503 = 0, 0
function init(args) math.randomseed(os.time() * 7919 + (thread_no or 0)) end
function request()
  local r = math.random(10)
  if r <= 3 then return wrk.format("GET", "/?page=" .. math.random(1, 5)) end
  if r <= 7 then return wrk.format("GET", "/poll/" .. math.random(lo, hi)) end
  return wrk.format("GET", "/poll/" .. math.random(lo, hi) .. "/results")
end
function response(status, headers, body)
  if status >= 500 then n5xx = n5xx + 1 end
  if status == 503 then n503 = n503 + 1 end
end
"""

LUA_CREATE = r"""
local origin = "%(origin)s"
local n = 0
n5xx, n503, ndone = 0, 0, 0
function delay() return %(delay)d end
function request()
  n = n + 1
  local body = "question_text=Soak+poll+" .. (thread_no or 0) .. "-" .. n ..
    "&choice=Yes&choice=No&choice=Maybe&closes_at=&tz_offset=0"
  return wrk.format("POST", "/poll/new", {["Content-Type"] = "%(form)s", ["Origin"] = origin}, body)
end
function response(status, headers, body)
  if status == 303 then ndone = ndone + 1 end
  if status >= 500 then n5xx = n5xx + 1 end
  if status == 503 then n503 = n503 + 1 end
end
"""


class Watchers:
    """Live-results WebSockets held open for the run, counting the frames they get."""

    def __init__(self, base: str, polls: list[int], count: int) -> None:
        self.base, self.polls, self.count = base, polls, count
        self.frames = 0
        self.connected = 0
        self.failed = 0
        self.dropped = 0
        self.cut = False  # PostgreSQL has ended the app's connections
        self.updated_after_cut: set[int] = set()  # watchers (by number) with a frame since
        self._tasks: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, connect=10)
        )
        for start in range(0, self.count, 100):  # in steps, as a crowd arrives
            await asyncio.gather(*(self._connect(i) for i in range(start, min(start + 100, self.count))))

    async def _connect(self, i: int) -> None:
        poll = self.polls[i % len(self.polls)]
        try:
            ws = await self._session.ws_connect(f"{self.base}/poll/{poll}/live", heartbeat=None)
        except (aiohttp.ClientError, TimeoutError):
            self.failed += 1
            return
        self.connected += 1
        self._tasks.append(asyncio.create_task(self._read(ws, i)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, i: int) -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                json.loads(message.data)
                self.frames += 1
                if self.cut:
                    self.updated_after_cut.add(i)
        self.dropped += 1

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def soak(args: Any, data: Data, tmp: Path, start_app) -> int:
    """Run the soak on a fresh app; 0 when every check passed, the app's log included."""
    if not WRK:
        print("the soak run needs wrk (apt install wrk)")
        return 2
    server = start_app(args, args.workers[0], tmp)
    try:
        checks, lines = asyncio.run(_soak(args, data, tmp, server))
    finally:
        server.stop()
    # Read once the app has stopped, so that a fault of its shutdown is seen too.
    log = (args.out / "app.log").read_text(errors="replace")
    found = faults.log_errors(log)
    checks["no Traceback, unretrieved task exception or descriptor error in the app's log"] = not found
    lines += [
        f"- the app's log: {', '.join(f'{n} x {e!r}' for e, n in found.items()) or 'no errors'}",
        "",
        *(f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in checks.items()),
    ]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if found:
        print(f"the app's log ({args.out / 'app.log'}) around its errors:\n{faults.error_lines(log)}")
    (args.out / "soak.md").write_text(report)
    return 0 if all(checks.values()) else 1


async def _soak(args: Any, data: Data, tmp: Path, server) -> tuple[dict[str, bool], list[str]]:
    """The run itself: its checks, and the report's lines so far."""
    duration = args.soak_duration
    polls = data.poll_ids
    before = await asyncio.to_thread(vote_state, data.url, polls)
    watched = random.sample(polls, WATCHED_POLLS)
    watchers = Watchers(server.url, watched, WATCHERS)
    await watchers.open()
    print(f"{watchers.connected} watchers connected ({watchers.failed} refused)", flush=True)

    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    stopfile = tmp / f"soakstop{random.randrange(1 << 30)}"

    async def sample() -> None:
        while True:
            samples.append((time.monotonic() - started, await asyncio.to_thread(server.rss)))
            await asyncio.sleep(1)

    async def stop_votes() -> None:
        await asyncio.sleep(duration)
        stopfile.touch()

    async def cut() -> int:
        await asyncio.sleep(duration / 2)
        ended = await asyncio.to_thread(faults.end_connections, data.url)
        watchers.cut = True  # only frames sent after the backends are gone count as after
        print(f"PostgreSQL ended {ended} connections of the app", flush=True)
        return ended

    sampler = asyncio.create_task(sample())
    stopper = asyncio.create_task(stop_votes())
    cutter = asyncio.create_task(cut())
    lo, hi = polls[0], polls[-1]
    browse, votes, create = await asyncio.gather(
        wrk(server.url + "/", BROWSE_CONNECTIONS, duration, LUA_BROWSE % {"lo": lo, "hi": hi}, tmp),
        wrk(
            server.url + "/",
            VOTE_CONNECTIONS,
            duration + 30,
            lua_writes("form_vote", stopfile, server.url, data.poll_choices),
            tmp,
            [Path(f"{stopfile}.{n}") for n in (1, 2)],
        ),
        wrk(
            server.url + "/",
            CREATE_CONNECTIONS,
            duration,
            LUA_CREATE % {"origin": server.url, "form": FORM, "delay": CREATE_DELAY_MS},
            tmp,
        ),
    )
    await stopper
    ended = await cutter
    sampler.cancel()
    await asyncio.gather(sampler, return_exceptions=True)
    frames, dropped = watchers.frames, watchers.dropped
    updated = len(watchers.updated_after_cut)
    await watchers.close()
    after = await asyncio.to_thread(settled_vote_state, data.url, polls)
    mismatched = await asyncio.to_thread(mismatched_everywhere, data.url)

    warm = [rss for t, rss in samples if duration * 0.2 <= t <= duration * 0.3]
    end = [rss for t, rss in samples if t >= duration * 0.9]
    warm_rss = statistics.median(warm) if warm else samples[0][1]
    end_rss = max(end) if end else samples[-1][1]
    growth = end_rss / warm_rss - 1
    counted = after["counted"] - before["counted"]
    n5xx = browse["n5xx"] + votes["n5xx"] + create["n5xx"]
    n503 = browse["n503"] + votes["n503"] + create["n503"]
    errors = errors_of(browse) + errors_of(votes) + errors_of(create)
    checks = {
        "no 5xx": n5xx == 0,
        "memory growth under 10% after warm-up": growth < 0.10,
        "votes answered 302 == votes counted": votes["ndone"] == counted,
        "every counter == its vote rows": mismatched == 0,
        "watchers got updates": frames > 0 and watchers.connected == WATCHERS,
        "PostgreSQL ended the app's connections mid-run": ended > 0,
        "no watcher closed by the server": dropped == 0,
        "every watcher got an update after the connections were ended": updated == watchers.connected,
    }
    lines = [
        f"Soak: {duration:g} s at {BROWSE_CONNECTIONS + VOTE_CONNECTIONS + CREATE_CONNECTIONS} connections "
        f"+ {watchers.connected} live watchers ({server.name}); PostgreSQL ended the app's "
        f"connections at {duration / 2:g} s.",
        "",
        "| traffic | requests | req/s | p50 ms | p99 ms | errors | 5xx | of which 503 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result in (("browsing", browse), ("voting", votes), ("making polls", create)):
        seconds = result["duration_us"] / 1e6
        lines.append(
            f"| {name} | {result['requests']:,} | {result['requests'] / seconds:,.0f} | "
            f"{result['p50_us'] / 1000:.2f} | {result['p99_us'] / 1000:.2f} | "
            f"{errors_of(result)} | {result['n5xx']} | {result['n503']} |"
        )
    lines += [
        "",
        f"- 5xx answers: {n5xx:,}, of which 503 (database unavailable, or a vote not counted): {n503:,}",
        f"- votes answered 302: {votes['ndone']:,}; counted in the database: {counted:,}; "
        f"choices whose counter differs from its vote rows: {mismatched}",
        f"- polls made: {create['ndone']:,}",
        f"- PostgreSQL ended {ended} connections of the app at {duration / 2:g} s",
        f"- live watchers: {watchers.connected} connected, {frames:,} frames received, "
        f"{dropped} closed by the server during the run, {updated} updated after the connections "
        "were ended",
        f"- server memory (RSS): {warm_rss:.0f} MiB after warm-up, {end_rss:.0f} MiB at the end "
        f"({growth:+.1%}); peak {max(r for _, r in samples):.0f} MiB",
        f"- errors of any kind (non-2xx/3xx, socket): {errors}",
    ]
    return checks, lines
