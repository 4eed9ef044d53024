#!/usr/bin/env python3
"""Benchmark the site through nginx with one, two and three app hosts on one PostgreSQL.

    sudo .venv/bin/python bench/hosts.py            # 10 s per run
    sudo .venv/bin/python bench/hosts.py --quick    # a smoke run: 3 s, fewer watchers

Needs root, nginx and pgbouncer (tests/install-hosts), like the multi-host test: it builds
the same cluster with tests/hosts.py, from the files and steps of docs/deployment.md
("Several hosts": network namespaces, each host the app with two processes,
config/production.yaml and config/polls-host.env; PostgreSQL, PgBouncer in transaction
pooling; config/nginx.conf in front), then for each number of hosts starts nginx with that
many upstreams and measures through it:

- pages: wrk on random /poll/{id} pages, over HTTPS;
- votes: wrk posting the voting form (a new voter each), then checked in the database:
  votes counted == votes answered 302, counters == `vote` rows;
- fan-out: watchers of one poll connected through nginx (spread over the hosts), and
  for each vote cast through nginx, the time until the last watcher has the update.

On one machine every host shares its cores (and PostgreSQL's): more hosts cannot mean
more throughput here. What the table shows is what spreading costs and that it works.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from aiohttpdemo_polls.store import making  # noqa: E402
from bench import load  # noqa: E402  (wrk, its scripts, the vote checks)
from tests import hosts as harness  # noqa: E402  (the multi-host test's cluster)

CONNECTIONS = 64
POLLS = 200
VOTE_GAP = 0.3  # seconds between fan-out votes: wider than live.window_ms, so each is its own update


@dataclass
class Row:
    hosts: int
    page_rps: float
    page_p99_ms: float
    page_errors: int
    vote_rps: float
    vote_check: str
    watchers: int
    fanout_p50_ms: float
    fanout_max_ms: float


def seed(url: str, polls: int) -> list[tuple[int, int]]:
    """`polls` open single-choice polls; their (poll, choice) pairs."""
    engine = sa.create_engine(url, future=True)
    pairs = []
    published = datetime.now(UTC) - timedelta(days=1)
    with engine.begin() as conn:
        for n in range(polls):
            question_id, choice_ids = making.add_poll(
                conn, f"Hosts bench #{n}", ("One", "Two", "Three"), pub_date=published
            )
            pairs += [(question_id, c) for c in choice_ids]
    engine.dispose()
    return pairs


async def pages(base: str, poll_ids: list[int], duration: float, tmp: Path) -> dict:
    lua = load.LUA_RANDOM_PAGE % {"lo": poll_ids[0], "hi": poll_ids[-1], "prefix": "/poll/", "suffix": ""}
    await load.wrk(base + "/", CONNECTIONS, min(duration, 3), lua, tmp)  # warm every host's cache
    return await load.wrk(base + "/", CONNECTIONS, duration, lua, tmp)


async def votes(
    base: str, url: str, pairs: list[tuple[int, int]], duration: float, tmp: Path
) -> tuple[float, str]:
    polls = sorted({q for q, _ in pairs})
    before = await asyncio.to_thread(load.vote_state, url, polls)
    stopfile = tmp / f"stop{random.randrange(1 << 30)}"
    lua = load.lua_writes("form_vote", stopfile, base, pairs)
    stopper = load.stop_later(stopfile, duration)
    done = [Path(f"{stopfile}.{n}") for n in (1, 2)]
    result = await load.wrk(base + "/", CONNECTIONS, duration + 30, lua, tmp, done)
    window = await stopper
    after = await asyncio.to_thread(load.settled_vote_state, url, polls)
    _, check = load.write_check("form_vote", result, before, after)
    errors = load.errors_of(result)
    return result["ndone"] / window, check + (f", errors {errors}" if errors else "")


async def fanout(base: str, question_id: int, choice_id: int, watchers: int, rounds: int) -> list[float]:
    """Milliseconds from each vote's 302 to the moment the last watcher has its update."""
    connector = aiohttp.TCPConnector(ssl=False, limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
        sockets = []
        for first in range(0, watchers, 100):
            sockets += await asyncio.gather(
                *(
                    session.ws_connect(f"{base}/poll/{question_id}/live")
                    for _ in range(min(100, watchers - first))
                )
            )
        totals = [json.loads(await ws.receive_str(timeout=30))["total"] for ws in sockets]
        delays = []
        try:
            for _ in range(rounds):
                await asyncio.sleep(VOTE_GAP)
                target = max(totals) + 1
                async with session.post(
                    f"{base}/poll/{question_id}/vote",
                    data={"choice": str(choice_id)},
                    headers={"Origin": base},
                    allow_redirects=False,
                ) as answer:
                    assert answer.status == 302, answer.status
                answered = time.perf_counter()

                async def caught_up(i: int, target: int = target) -> float:
                    while totals[i] < target:
                        totals[i] = json.loads(await sockets[i].receive_str(timeout=30))["total"]
                    return time.perf_counter()

                last = max(await asyncio.gather(*(caught_up(i) for i in range(len(sockets)))))
                delays.append((last - answered) * 1000)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return delays


async def measure(args: argparse.Namespace, folder: Path) -> list[Row]:
    rows = []
    with harness.servers(folder) as servers:
        hosts, url = servers.hosts, servers.database.url
        pairs = await asyncio.to_thread(seed, url, POLLS)
        poll_ids = sorted({q for q, _ in pairs})
        for count in args.hosts:
            nginx = harness.Nginx(
                folder / f"nginx{count}", [f"{h.address}:{harness.APP_PORT}" for h in hosts[:count]]
            )
            nginx.start()
            try:
                base = f"https://127.0.0.1:{nginx.https_port}"
                page = await pages(base, poll_ids, args.duration, folder)
                vote_rps, check = await votes(base, url, pairs, args.duration, folder)
                question_id, choice_id = pairs[0]
                delays = await fanout(base, question_id, choice_id, args.watchers, args.rounds)
            finally:
                nginx.stop()
            rows.append(
                Row(
                    hosts=count,
                    page_rps=page["requests"] / (page["duration_us"] / 1e6),
                    page_p99_ms=page["p99_us"] / 1000,
                    page_errors=load.errors_of(page),
                    vote_rps=vote_rps,
                    vote_check=check,
                    watchers=args.watchers,
                    fanout_p50_ms=statistics.median(delays),
                    fanout_max_ms=max(delays),
                )
            )
            print(table(rows[-1:], header=False), end="", flush=True)
    return rows


def table(rows: list[Row], header: bool = True) -> str:
    lines = (
        [
            "| hosts | pages req/s | pages p99 ms | page errors | votes/s | votes check | watchers "
            "| fan-out p50 ms | fan-out max ms |",
            "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        if header
        else []
    )
    for r in rows:
        lines.append(
            f"| {r.hosts} | {r.page_rps:,.0f} | {r.page_p99_ms:.1f} | {r.page_errors} | {r.vote_rps:,.0f} "
            f"| {r.vote_check} | {r.watchers} | {r.fanout_p50_ms:.0f} | {r.fanout_max_ms:.0f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 200 watchers, 5 votes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    # Each watcher holds two of nginx's connections (browser side, host side), and the test's
    # nginx allows 1,024 per worker: 1,000 watchers overflow a worker that takes most of them.
    parser.add_argument("--watchers", type=int, default=400, help="live watchers for the fan-out")
    parser.add_argument("--rounds", type=int, default=10, help="votes timed in the fan-out")
    parser.add_argument("--hosts", default="1,2,3", help="numbers of hosts behind nginx, e.g. 1,3")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.watchers, args.rounds = 3.0, 200, 5
    args.hosts = [int(n) for n in args.hosts.split(",")]
    if not all(1 <= n <= 3 for n in args.hosts):
        parser.error("--hosts: numbers from 1 to 3")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not load.WRK:
        print("bench/hosts.py needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="polls-hosts-bench-"))
    folder.chmod(0o755)  # the wheel's server user must reach the data directory
    try:
        print(table([]), end="", flush=True)
        rows = asyncio.run(measure(args, folder))
    except harness.HostsUnavailable as exc:
        print(f"bench/hosts.py: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\n{args.duration:g} s wrk runs at {CONNECTIONS} connections through nginx (HTTPS); each host runs "
        f"{harness.WORKERS} processes; {os.cpu_count()} cores shared by nginx, the hosts, PostgreSQL and "
        "the load generators.\n\n" + table(rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
