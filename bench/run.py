#!/usr/bin/env python3
"""Benchmark the polls app against bare aiohttp and PostgreSQL's own one-row update rate.

    .venv/bin/python bench/run.py                  # 10 s per run, 3 repeats, medians
    .venv/bin/python bench/run.py --quick          # a smoke run: 3 s, one repeat
    .venv/bin/python bench/run.py --workers 1,2    # also a run with two app processes
    .venv/bin/python bench/run.py --soak           # 60 s of mixed traffic, then checks
    .venv/bin/python bench/run.py --quick --only api_vote,api_create,exports

In one run it starts, on 127.0.0.1 and free ports only: the real app
(`python -m aiohttpdemo_polls -c config/polls_bench.yaml`) on its own database
`aiohttpdemo_polls_bench` seeded with `init_db.py --reset --polls 1000`; a bare aiohttp
"Hello" app (bench/hello.py); and `pgbench` updating one row (`votes = votes + 1`,
32 clients). wrk drives each HTTP target at 64 and 256 connections (an aiohttp-client load
generator when wrk is not installed; the table says which). Pages (PAGE_SCENARIOS) are
compared with bare aiohttp, writes (WRITE_SCENARIOS: form and API votes, API poll making)
with pgbench. After every write scenario the database is checked: writes answered as done
(302 vote, 200 API vote, 201 poll, 303 date answer) == votes counted, ballots added or polls
made (a date poll's rows, each with an answer per option), and
counters == `vote` rows. The exports are read, with the maker's token, from a poll the run
makes through the API and gives EXPORT_BALLOTS ballots. The ranked scenario reads the
results page of a ranked poll of RANKED_BALLOTS ballots over 8 choices (bench/ranked.py
writes it into the database), and the report gives how long its count takes: the rankings
grouped in SQL, then parsed and counted in Python.

Results: a table on stdout, `bench-results/results.md` and `bench-results/results.png`.
Every process it starts is stopped when it ends, also on Ctrl-C. It installs nothing.
"""

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from aiohttpdemo_polls import settings  # noqa: E402
from aiohttpdemo_polls.store import pgserver  # noqa: E402
from bench.load import (  # noqa: E402
    LUA_RANDOM_PAGE,
    WRITES,
    WRK,
    Data,
    Request,
    errors_of,
    load_data,
    lua_writes,
    settled_vote_state,
    stop_later,
    vote_state,
    write_check,
    wrk,
)
from bench.processes import cpu_seconds, free_port, rss_kib  # noqa: E402
from bench.ranked import RANKED_BALLOTS, counting_times, seed_ranked_poll  # noqa: E402

BENCH_CONFIG = ROOT / "config" / "polls_bench.yaml"
HELLO = Path(__file__).with_name("hello.py")
PGBENCH_CLIENTS = 32
IDLE_CPU = 0.05  # a server using less of a core than this is idle (Server.settle)

PAGE_SCENARIOS = {
    "index": "GET /",
    "poll": "GET /poll/{id}",
    "results": "GET /poll/{id}/results",
    "present": "GET /poll/{id}/present",
    "api_list": "GET /api/polls",
    "api_poll": "GET /api/polls/{id}",
    "openapi": "GET /api/openapi.json",
}
# The maker's files, behind the manage token of one poll the run makes through the API and
# gives EXPORT_BALLOTS ballots (Bench.export_path): the token is stored hashed, so only its
# maker knows it.
EXPORT_BALLOTS = 1000
EXPORT_FILES = {"export_csv": "results.csv", "export_json": "results.json", "export_ballots": "ballots.csv"}
PAGE_SCENARIOS.update(
    {name: f"GET {file}, a poll of {EXPORT_BALLOTS:,} ballots" for name, file in EXPORT_FILES.items()}
)
# The results page of the one ranked poll bench/ranked.py seeds (--ranked-ballots, default
# RANKED_BALLOTS): its path is known once it is seeded.
PAGE_SCENARIOS["ranked_results"] = "GET /poll/{id}/results, a ranked poll (see below)"
# Where each page scenario sends its GETs: a fixed path, or (prefix, suffix) around a random
# poll id. The exports' fixed paths are known once their poll is made.
PAGE_PATHS: dict[str, str | tuple[str, str]] = {
    "index": "/",
    "hello": "/",
    "api_list": "/api/polls",
    "openapi": "/api/openapi.json",
    "poll": ("/poll/", ""),
    "hello_random": ("/poll/", ""),
    "results": ("/poll/", "/results"),
    "present": ("/poll/", "/present"),
    "api_poll": ("/api/polls/", ""),
}
# Bare aiohttp driven like each page scenario: a fixed URL, or a random /poll/{id} from
# wrk's Lua (which costs wrk CPU the machine's server then lacks), so ratios compare like
# with like. Which bare run each page scenario is compared with:
BARE_SCENARIOS = {"hello": 'bare aiohttp "Hello", GET /', "hello_random": 'bare aiohttp "Hello", random URLs'}
BARE_FOR = {
    "index": "hello",
    "poll": "hello_random",
    "results": "hello_random",
    "present": "hello_random",
    "api_list": "hello",
    "api_poll": "hello_random",
    "openapi": "hello",
    **dict.fromkeys(EXPORT_FILES, "hello"),
    "ranked_results": "hello",
}
# A date poll the run makes through the API (Bench.date_targets): each write a new
# participant answering every option, all through the same vote batch as a vote.
DATE_OPTIONS = 5
# Writes, compared with pgbench's one-row update: each scenario's kind of write (WRITES) and
# whether its votes all go to the one hot choice. Poll making takes a lock per client address
# (making._count_creation) and wrk sends from 127.0.0.1 alone: one maker's rate, not a crowd's.
WRITE_SCENARIOS = {
    "vote_hot": "POST vote, one hot choice",
    "vote_spread": "POST vote, 1000 polls",
    "api_vote_hot": "POST /api/polls/{id}/vote, one hot choice",
    "api_vote": "POST /api/polls/{id}/vote, 1000 polls",
    "api_create": "POST /api/polls, one address (creation lock)",
    "date_answer": f"POST /poll/{{id}}/answer, a date poll of {DATE_OPTIONS} options",
}
WRITE_KINDS = {
    "vote_hot": "form_vote",
    "vote_spread": "form_vote",
    "api_vote_hot": "api_vote",
    "api_vote": "api_vote",
    "api_create": "api_create",
    "date_answer": "date_answer",
}
HOT = {"vote_hot", "api_vote_hot"}
ONLY_GROUPS = {"exports": list(EXPORT_FILES)}  # names `--only` takes for several scenarios


@dataclass
class Run:
    """One load run's figures."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mib: float | None
    check: str = ""
    ok: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class Server:
    """A server process group this script started; stopped (and only it) on exit."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.name, self.port = name, port
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer within {timeout} s; see {self.log.name}")

    def rss(self) -> float:
        return rss_kib(self.proc.pid) / 1024

    async def settle(self, timeout: float = 30) -> None:
        """Until the server is idle: wrk leaves requests in flight when its time is up, and
        a slow page's (ballots.csv at 256 connections) would slow the next run."""
        step, deadline = 0.25, time.monotonic() + timeout
        used = await asyncio.to_thread(cpu_seconds, self.proc.pid)
        while time.monotonic() < deadline:
            await asyncio.sleep(step)
            now = await asyncio.to_thread(cpu_seconds, self.proc.pid)
            if now - used < step * IDLE_CPU:
                return
            used = now

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Our own process group (start_new_session): the server and its workers only.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()


class RssSampler:
    """The highest RSS of a server seen while a run lasts (sampled every 0.5 s)."""

    def __init__(self, server: Server | None) -> None:
        self.server, self.peak = server, 0.0
        self._stop = False

    async def run(self) -> None:
        while not self._stop and self.server is not None:
            self.peak = max(self.peak, await asyncio.to_thread(self.server.rss))
            await asyncio.sleep(0.5)

    def stop(self) -> float | None:
        self._stop = True
        return self.peak if self.server is not None else None


# --- the database --------------------------------------------------------------------------


def bench_config() -> dict[str, Any]:
    return settings.load(BENCH_CONFIG, os.environ)


def seed(config_path: Path, polls: int) -> None:
    subprocess.run(
        [sys.executable, "init_db.py", "-c", str(config_path), "--reset", "--polls", str(polls)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


# --- load generators -------------------------------------------------------------------------


async def python_load(
    url: str,
    connections: int,
    duration: float,
    make_request: Callable[[], Request],
    stopfile: Path | None = None,
    headers: Sequence[str] = (),
    done: int = 0,
) -> dict[str, Any]:
    """The fallback load generator (aiohttp client): far slower than wrk, so figures are lower bounds.

    Counts as wrk's write scripts do: POSTs answered (`nwrite`), those answered `done` (`ndone`)."""
    import aiohttp

    latencies: list[float] = []
    result = dict.fromkeys(["connect", "read", "write", "timeout", "status", "ndone", "nwrite", "nother"], 0)
    deadline = time.monotonic() + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline and not (stopfile and stopfile.exists()):
            method, path, options = make_request()
            started = time.perf_counter()
            try:
                async with session.request(method, url + path, allow_redirects=False, **options) as r:
                    await r.read()
            except TimeoutError:
                result["timeout"] += 1
                continue
            except aiohttp.ClientError:
                result["read"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            if r.status >= 400:
                result["status"] += 1
            if method == "POST":
                result["nwrite"] += 1
                result["ndone"] += r.status == done

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=5)
    started = time.monotonic()
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers=[tuple(part.strip() for part in header.split(":", 1)) for header in headers],
    ) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    latencies.sort()

    def pct(p: float) -> int:
        return (
            int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6) if latencies else 0
        )

    result.update(
        requests=len(latencies),
        duration_us=int((time.monotonic() - started) * 1e6),
        p50_us=pct(50),
        p99_us=pct(99),
    )
    return result


class Bench:
    def __init__(
        self, args: argparse.Namespace, tmp: Path, data: Data, ranked_path: str | None = None
    ) -> None:
        self.args, self.tmp, self.data = args, tmp, data
        self.ranked_path = ranked_path  # the seeded ranked poll's results page, if seeded
        self.loadgen = "wrk" if WRK and not args.python_load else "aiohttp client"
        self.manage_path: str | None = None  # of the exports' poll, once made
        self.date_poll: list[tuple[int, int]] | None = None  # (poll, option) of the date poll, once made

    async def page(self, server: Server, scenario: str, connections: int) -> Run:
        lo, hi = self.data.poll_ids[0], self.data.poll_ids[-1]
        if scenario == "ranked_results":
            assert self.ranked_path is not None, "the ranked poll is seeded when its scenario runs"
            path: str | tuple[str, str] = self.ranked_path
        else:
            path = PAGE_PATHS.get(scenario) or await self.export_path(server, scenario)
        await server.settle()
        if self.args.warmup and server.name != "bare":
            # Unmeasured: fills the app's cache as a server in service would have it.
            await self._page_load(server, path, connections, self.args.warmup, lo, hi)
            await server.settle()
        sampler = RssSampler(server)
        sampling = asyncio.create_task(sampler.run())
        try:
            result = await self._page_load(server, path, connections, self.args.duration, lo, hi)
        finally:
            peak = sampler.stop()
            await sampling
        rps = result["requests"] / (result["duration_us"] / 1e6)
        errors = errors_of(result)
        return Run(rps, result["p50_us"] / 1000, result["p99_us"] / 1000, errors, peak, ok=True)

    async def _page_load(
        self, server: Server, path: str | tuple[str, str], connections: int, duration: float, lo: int, hi: int
    ) -> dict[str, Any]:
        if self.loadgen == "wrk":
            if isinstance(path, str):
                return await wrk(
                    server.url + path, connections, duration, "", self.tmp, headers=self.args.header
                )
            lua = LUA_RANDOM_PAGE % {"lo": lo, "hi": hi, "prefix": path[0], "suffix": path[1]}
            return await wrk(server.url + "/", connections, duration, lua, self.tmp, headers=self.args.header)

        def make() -> Request:
            if isinstance(path, str):
                return "GET", path, {}
            return "GET", f"{path[0]}{random.randint(lo, hi)}{path[1]}", {}

        return await python_load(server.url, connections, duration, make, headers=self.args.header)

    async def export_path(self, server: Server, scenario: str) -> str:
        """The path of an export file of a poll made through the API, as its maker (who alone
        knows the token), with EXPORT_BALLOTS ballots cast through the API; made once a run."""
        if self.manage_path is None:
            import aiohttp

            origin = {"Origin": server.url}
            new_poll = {
                "question_text": "Where shall we eat? (exports)",
                "choices": ["Pizza", "Sushi", "Salad"],
            }
            async with aiohttp.ClientSession(server.url, cookie_jar=aiohttp.DummyCookieJar()) as session:
                async with session.post("/api/polls", json=new_poll, headers=origin) as r:
                    made = await r.json()
                    if r.status != 201:
                        raise RuntimeError(f"POST /api/polls answered {r.status}: {made}")
                async with session.get(f"/api/polls/{made['id']}") as r:
                    choices = [c["id"] for c in (await r.json())["choices"]]
                votes = iter(range(EXPORT_BALLOTS))

                async def voter() -> None:  # each vote a new voter: the session keeps no cookie
                    for n in votes:
                        body = {"choices": [choices[n % len(choices)]]}
                        async with session.post(made["links"]["vote"], json=body, headers=origin) as r:
                            if r.status != 200:
                                raise RuntimeError(f"API vote answered {r.status}: {await r.text()}")

                await asyncio.gather(*(voter() for _ in range(16)))
            self.manage_path = urllib.parse.urlsplit(made["manage_url"]).path
        return f"{self.manage_path}/{EXPORT_FILES[scenario]}"

    async def date_targets(self, server: Server) -> list[tuple[int, int]]:
        """(poll, option) of a date poll of DATE_OPTIONS options made through the API, once a
        run: half whole days, half start times in Berlin."""
        if self.date_poll is None:
            import aiohttp

            options = [
                {"date": f"2030-03-0{n}"}
                if n % 2
                else {"start": f"2030-03-0{n}T18:00", "duration_minutes": 90}
                for n in range(1, DATE_OPTIONS + 1)
            ]
            new_poll = {"kind": "dates", "question_text": "Team dinner (bench)", "timezone": "Europe/Berlin"}
            async with aiohttp.ClientSession(server.url, cookie_jar=aiohttp.DummyCookieJar()) as session:
                async with session.post(
                    "/api/polls", json={**new_poll, "options": options}, headers={"Origin": server.url}
                ) as r:
                    made = await r.json()
                    if r.status != 201:
                        raise RuntimeError(f"POST /api/polls answered {r.status}: {made}")
                async with session.get(f"/api/polls/{made['id']}") as r:
                    self.date_poll = [(made["id"], c["id"]) for c in (await r.json())["choices"]]
        return self.date_poll

    async def writes(self, server: Server, scenario: str, connections: int) -> Run:
        """Votes or new polls from new voters/makers for the run's duration; then the check
        that the database holds exactly those answered as done."""
        data, kind = self.data, WRITE_KINDS[scenario]
        if kind == "date_answer":
            targets = await self.date_targets(server)
        else:
            targets = [] if kind == "api_create" else [data.hot] if scenario in HOT else data.poll_choices
        polls = sorted({q for q, _ in targets})
        await server.settle()
        before = await asyncio.to_thread(vote_state, data.url, polls)
        stopfile = self.tmp / f"stop{random.randrange(1 << 30)}"
        sampler = RssSampler(server)
        sampling = asyncio.create_task(sampler.run())
        duration = self.args.duration
        stopper = stop_later(stopfile, duration)
        try:
            if self.loadgen == "wrk":
                lua = lua_writes(kind, stopfile, server.url, targets)
                # A generous bound: wrk is ended as soon as both threads have their last
                # writes answered (writes unanswered after it are reported as a mismatch).
                done = [Path(f"{stopfile}.{n}") for n in (1, 2)]
                result = await wrk(server.url + "/", connections, duration + 30, lua, self.tmp, done)
            else:
                numbers = itertools.count(1)

                def make() -> Request:
                    method, path, options = WRITES[kind].python(targets, next(numbers))
                    return method, path, {**options, "headers": {"Origin": server.url}}

                result = await python_load(
                    server.url, connections, duration + 30, make, stopfile, done=WRITES[kind].done
                )
            window = await stopper
        finally:
            stopper.cancel()
            peak = sampler.stop()
            await sampling
        after = await asyncio.to_thread(settled_vote_state, data.url, polls)
        ok, check = write_check(kind, result, before, after)
        errors = errors_of(result)
        # Rate over the write window; wrk's latency figures include the few tail GETs.
        rate = result["ndone"] / window
        return Run(rate, result["p50_us"] / 1000, result["p99_us"] / 1000, errors, peak, check, ok)

    async def pgbench(self) -> Run:
        script = self.tmp / "one_row.sql"
        script.write_text("UPDATE bench_one_row SET votes = votes + 1 WHERE id = 1;\n")
        prefix = self.tmp / f"pgbench{random.randrange(1 << 30)}"
        argv = [
            str(pgserver.bin_dir() / "pgbench"),
            "-n",
            "-c",
            str(PGBENCH_CLIENTS),
            "-j",
            "2",
            "-T",
            str(max(1, round(self.args.duration))),
            "-f",
            str(script),
            "--log",
            f"--log-prefix={prefix}",
            self.data.url,
        ]
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=self.tmp, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=self.args.duration + 60)
        text = out.decode(errors="replace")
        tps = next(
            (float(line.split("=")[1].split()[0]) for line in text.splitlines() if line.startswith("tps =")),
            None,
        )
        if proc.returncode != 0 or tps is None:
            raise RuntimeError(f"pgbench failed:\n{text}")
        latencies = []
        for log in self.tmp.glob(prefix.name + "*"):
            latencies += [int(line.split()[2]) for line in log.read_text().splitlines() if line.strip()]
            log.unlink()
        latencies.sort()
        p50 = latencies[len(latencies) // 2] / 1000 if latencies else 0
        p99 = latencies[int(len(latencies) * 0.99)] / 1000 if latencies else 0
        failed = next(
            (int(line.split(":")[1].split()[0]) for line in text.splitlines() if "failed" in line), 0
        )
        return Run(tps, p50, p99, failed, None)


# --- the run ------------------------------------------------------------------------------------


def start_app(args: argparse.Namespace, workers: int, tmp: Path) -> Server:
    port = free_port()
    # Free ports for the site and its metrics: an app already serving here (README's first
    # command) holds the default ones.
    env = {
        **os.environ,
        "POLLS_PORT": str(port),
        "POLLS_METRICS_PORT": str(free_port()),
        "POLLS_HOST": "127.0.0.1",
    }
    argv = [sys.executable, "-m", "aiohttpdemo_polls", "-c", str(BENCH_CONFIG)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if args.uvloop:
        env["POLLS_UVLOOP"] = "true"
    server = Server(
        f"app, {workers} process{'es' if workers > 1 else ''}", argv, port, env, args.out / "app.log"
    )
    server.wait_ready()
    return server


def start_bare(args: argparse.Namespace) -> Server:
    port = free_port()
    argv = [sys.executable, str(HELLO), str(port)] + (["--uvloop"] if args.uvloop else [])
    server = Server("bare", argv, port, dict(os.environ), args.out / "bare.log")
    server.wait_ready()
    return server


Key = tuple[str, str, int]  # (target, scenario, connections)


async def measure(
    args: argparse.Namespace, data: Data, tmp: Path, ranked_path: str | None = None
) -> dict[Key, list[Run]]:
    bench = Bench(args, tmp, data, ranked_path)
    runs: dict[Key, list[Run]] = {}
    scenarios = [s for s in [*PAGE_SCENARIOS, *WRITE_SCENARIOS] if not args.only or s in args.only]

    def note(key: Key, run: Run) -> None:
        runs.setdefault(key, []).append(run)
        target, scenario, conns = key
        print(
            f"  {target:7} {scenario:14} c={conns:<4} {run.rps:9.0f}/s  p50 {run.p50_ms:6.2f} ms  "
            f"p99 {run.p99_ms:7.2f} ms  errors {run.errors}  "
            f"{'' if run.rss_mib is None else f'{run.rss_mib:.0f} MiB'}  {run.check}",
            flush=True,
        )

    for repeat in range(1, args.repeat + 1):
        print(f"repeat {repeat}/{args.repeat} (load generator: {bench.loadgen})", flush=True)
        bare = start_bare(args)
        try:
            for scenario in BARE_SCENARIOS:
                for conns in args.connections:
                    note(("bare", scenario, conns), await bench.page(bare, scenario, conns))
        finally:
            bare.stop()
        note(("pgbench", "one_row", PGBENCH_CLIENTS), await bench.pgbench())
        for workers in args.workers:
            app = start_app(args, workers, tmp)
            target = f"app, {workers} process{'es' if workers > 1 else ''}"
            try:
                for scenario in scenarios:
                    for conns in args.connections:
                        if scenario in WRITE_SCENARIOS:
                            note((target, scenario, conns), await bench.writes(app, scenario, conns))
                        else:
                            note((target, scenario, conns), await bench.page(app, scenario, conns))
            finally:
                app.stop()
    return runs


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(
    runs: dict[Key, list[Run]], args: argparse.Namespace, loadgen: str, access_log: bool
) -> tuple[str, list[dict]]:
    """The Markdown table of medians, and the rows behind it (for the chart)."""
    bare = {(s, c): median([r.rps for r in rs]) for (t, s, c), rs in runs.items() if t == "bare"}
    pg = [r.rps for (t, _, _), rs in runs.items() if t == "pgbench" for r in rs]
    pg_tps = median(pg) if pg else None
    lines = [
        "| target | scenario | conns | req/s | ratio | p50 ms | p99 ms | errors | RSS MiB | check |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    rows = []
    for (target, scenario, conns), rs in runs.items():
        rps = median([r.rps for r in rs])
        if target == "bare":
            ratio, label = "1.00 (bare)", BARE_SCENARIOS[scenario]
        elif target == "pgbench":
            ratio, label = "1.00 (pgbench)", "pgbench: UPDATE one row, votes + 1"
        elif scenario in WRITE_SCENARIOS:
            ratio = f"{rps / pg_tps:.2f}x pgbench" if pg_tps else "-"
            label = WRITE_SCENARIOS[scenario]
        else:
            base = bare.get((BARE_FOR[scenario], conns))
            ratio = f"{rps / base:.0%} of bare" if base else "-"
            label = PAGE_SCENARIOS[scenario]
        rss = [r.rss_mib for r in rs if r.rss_mib is not None]
        checks = [r for r in rs if r.check]
        check = ""
        if checks:
            check = (
                "exact in all runs"
                if all(r.ok for r in checks)
                else "; ".join(r.check for r in checks if not r.ok)
            )
        lines.append(
            f"| {target} | {label} | {conns} | {rps:,.0f} | {ratio} | {median([r.p50_ms for r in rs]):.2f} | "
            f"{median([r.p99_ms for r in rs]):.2f} | {sum(r.errors for r in rs)} | "
            f"{f'{median(rss):.0f}' if rss else '-'} | {check} |"
        )
        rows.append({"target": target, "scenario": scenario, "label": label, "conns": conns, "rps": rps})
    header = (
        f"Medians of {args.repeat} run(s) of {args.duration:g} s each; load generator: {loadgen}"
        f"{'; event loop: uvloop' if args.uvloop else '; event loop: asyncio'}"
        f"; the app's access log: {'on' if access_log else 'off'} (config/polls_bench.yaml). "
        "Errors are summed over runs (non-2xx/3xx answers and socket errors). "
        "Page ratios are to bare aiohttp at the same connections, driven the same way "
        "(GET / for fixed URLs: the index, the API list, the OpenAPI document, the exports; "
        "random /poll/{id} URLs for the poll pages); "
        f"write ratios (votes, API votes, API poll making) to pgbench's one-row update rate "
        f"({PGBENCH_CLIENTS} clients); a write's req/s counts those answered as done (302 vote, "
        "200 API vote, 201 poll, 303 date answer). RSS is the server's peak (all its processes)."
    )
    return header + "\n\n" + "\n".join(lines) + "\n", rows


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {system}"


def chart(rows: list[dict], path: Path) -> bool:
    """Two panels: pages beside bare aiohttp, votes beside pgbench."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no chart", file=sys.stderr)
        return False
    panels = [
        ("Pages (requests/s)", [r for r in rows if r["target"] == "bare" or r["scenario"] in PAGE_SCENARIOS]),
        (
            "Writes/s (pgbench: updates/s)",
            [r for r in rows if r["target"] == "pgbench" or r["scenario"] in WRITE_SCENARIOS],
        ),
    ]
    conns = sorted({r["conns"] for r in rows if r["target"] != "pgbench"})
    height = 0.8 / max(1, len(conns))
    size = max(len({(r["target"], r["scenario"]) for r in panel}) for _, panel in panels)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.42 * size + 1.4), dpi=80)
    for ax, (title, panel) in zip(axes, panels, strict=True):
        groups = list(dict.fromkeys((r["target"], r["scenario"]) for r in panel))
        labels = []
        for i, (target, scenario) in enumerate(groups):
            label = next(r["label"] for r in panel if (r["target"], r["scenario"]) == (target, scenario))
            labels.append(label if target in ("bare", "pgbench") else f"{target}: {label}")
            for j, c in enumerate(conns if target != "pgbench" else [PGBENCH_CLIENTS]):
                match = [
                    r for r in panel if (r["target"], r["scenario"], r["conns"]) == (target, scenario, c)
                ]
                if match:
                    ax.barh(
                        i + j * height,
                        match[0]["rps"],
                        height=height,
                        color="C3" if target == "pgbench" else f"C{j}",
                        label=f"{c} connections"
                        if target != "pgbench"
                        and not ax.get_legend_handles_labels()[1].count(f"{c} connections")
                        else None,
                    )
        ax.set_yticks([i + height * (len(conns) - 1) / 2 for i in range(len(groups))])
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (default 10)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per figure; medians are shown (default 3)"
    )
    parser.add_argument("--connections", default="64,256", help="comma-separated (default 64,256)")
    parser.add_argument("--workers", default="1", help="app processes to try, e.g. 1,2 (default 1)")
    parser.add_argument(
        "--only",
        help="comma-separated scenarios: "
        + ",".join([*PAGE_SCENARIOS, *WRITE_SCENARIOS])
        + "; `exports` names the three export_*",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help='a header on every page request, e.g. "Accept-Encoding: gzip" (repeatable; wrk sends none)',
    )
    parser.add_argument("--uvloop", action="store_true", help="run the app (and bare aiohttp) on uvloop")
    parser.add_argument(
        "--warmup", type=float, default=2, help="unmeasured seconds of load before each page run (default 2)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per run, one repeat")
    parser.add_argument("--polls", type=int, default=1000, help="generated polls to seed (default 1000)")
    parser.add_argument(
        "--python-load", action="store_true", help="use the aiohttp-client generator, not wrk"
    )
    parser.add_argument(
        "--ranked-ballots",
        type=int,
        default=RANKED_BALLOTS,
        help=f"ballots of the ranked poll (default {RANKED_BALLOTS:,})",
    )
    parser.add_argument("--soak", action="store_true", help="the 60 s mixed-traffic soak run instead")
    parser.add_argument("--soak-duration", type=float, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="where results go")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.repeat = 3, 1
    args.connections = [int(c) for c in args.connections.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    if args.only:
        only = [name for s in args.only.split(",") for name in ONLY_GROUPS.get(s, [s])]
        unknown = [s for s in only if s not in PAGE_SCENARIOS and s not in WRITE_SCENARIOS]
        if unknown:
            parser.error(f"--only: no scenario {', '.join(unknown)}")
        args.only = only
    else:
        args.only = None
    return args


@contextlib.contextmanager
def temporary() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="polls-bench-") as tmp:
        yield Path(tmp)


def ranked_poll(url: str, ballots: int) -> tuple[str, str]:
    """Seed the ranked poll; its results page's path, and the report's line on its count."""
    print(f"seeding a ranked poll of {ballots:,} ballots ...", flush=True)
    question_id, _ = seed_ranked_poll(url, ballots)
    times = counting_times(url, question_id)
    note = (
        f"\nRanked poll (ranked_results): {times['ballots']:,} ballots over 8 choices, "
        f"{times['distinct_rankings']:,} distinct rankings, {times['rounds']} rounds. Counting it: "
        f"grouped in SQL {times['sql_ms']:.0f} ms, parsed {times['parse_ms']:.0f} ms, counted (runoff.count) "
        f"{times['count_ms']:.0f} ms (best of 5; the app parses and counts in a thread, and keeps the count "
        "until the poll changes).\n"
    )
    print(note.strip(), flush=True)
    return f"/poll/{question_id}/results", note


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for log in ("app.log", "bare.log"):  # this run's server output only
        (args.out / log).unlink(missing_ok=True)
    config = bench_config()
    print(f"seeding {config['database']['name']} with {args.polls} polls ...", flush=True)
    seed(BENCH_CONFIG, args.polls)
    data = load_data(pgserver.configured_url(config))
    ranked_path, ranked_note = None, ""
    if not args.soak and (not args.only or "ranked_results" in args.only):
        ranked_path, ranked_note = ranked_poll(data.url, args.ranked_ballots)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with temporary() as tmp:
        if args.soak:
            from bench.soak import soak  # only for --soak

            return soak(args, data, tmp, start_app)
        runs = asyncio.run(measure(args, data, tmp, ranked_path))
    loadgen = "wrk" if WRK and not args.python_load else "aiohttp client"
    text, rows = table(runs, args, loadgen, config["access_log"])
    text += ranked_note
    command = "bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = f"Run {started} on {machine()}.\nCommand: `{command.strip()}`\n\n{text}"
    print("\n" + report)
    (args.out / "results.md").write_text(report)
    if chart(rows, args.out / "results.png"):
        print(f"wrote {args.out / 'results.md'} and {args.out / 'results.png'}")
    failed = [k for k, rs in runs.items() if not all(r.ok for r in rs)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
