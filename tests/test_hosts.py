"""Three app hosts behind nginx on one PostgreSQL and PgBouncer, built as docs/deployment.md
says (tests/hosts.py): the site works as a whole, and survives a host dying, being cut off
from the database, its server connections terminated, and each host being restarted in turn.

Each scenario prints its figures (run with `pytest -s`): requests sent and failed, votes
answered and counted, and recovery times.
"""

import asyncio
import collections
import contextlib
import html
import itertools
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import hosts
import pytest
import sqlalchemy as sa
import stored
from descriptors import open_files_limit
from live_frames import counts, frame

from aiohttpdemo_polls.store import making, schema
from aiohttpdemo_polls.web.voting import ALREADY_VOTED, NOT_COUNTED, VOTE_UNKNOWN, VOTER_COOKIE, VOTING_CLOSED

pytestmark = pytest.mark.slow


# The test's own connections, told apart from the app's (PgBouncer's and the hosts' LISTEN).
TEST_CLIENT = "polls-hosts-test"


@pytest.fixture(scope="module")
def site() -> Iterator[hosts.Cluster]:
    """The three hosts, the shared database and nginx, for every scenario of this module.

    A machine that cannot make them fails every scenario with the reason: never a skip.
    """
    try:
        with hosts.cluster() as running:
            yield running
            return
    except hosts.HostsUnavailable as exc:
        reason = str(exc)
    pytest.fail(f"the multi-host test could not run: {reason}", pytrace=False)


@pytest.fixture(scope="module")
def engine(site: hosts.Cluster) -> Iterator[sa.engine.Engine]:
    """The app's database straight, on the database machine (TCP, password), to set up and count."""
    engine = sa.create_engine(site.database.url, future=True, connect_args={"application_name": TEST_CLIENT})
    yield engine
    engine.dispose()


def publish_poll(
    engine: sa.engine.Engine, text: str, choices: tuple[str, ...], **columns: Any
) -> tuple[int, list[int]]:
    """A poll published yesterday on the site's database (not the tests' own, which the
    `make_question` fixture fills): its id and its choices' ids."""
    with engine.begin() as conn:
        return making.add_poll(conn, text, choices, pub_date=datetime.now(UTC) - timedelta(days=1), **columns)


def vote_rows(engine: sa.engine.Engine, question_id: int) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.vote.c.choice_id, sa.func.count())
            .where(schema.vote.c.question_id == question_id)
            .group_by(schema.vote.c.choice_id)
        )
        return dict(rows.all())


def assert_counters_match_vote_rows(engine: sa.engine.Engine, question_id: int) -> int:
    """Each choice's counter equals its `vote` rows; the total."""
    counts = stored.counters(engine, question_id)
    rows = vote_rows(engine, question_id)
    assert counts == {choice: rows.get(choice, 0) for choice in counts}
    return sum(counts.values())


def upstreams_of(
    site: hosts.Cluster, since: float, uri: str | None = None, answered: bool = False
) -> list[list[str]]:
    """The hosts nginx tried, in order, for each request it received since `since` (epoch seconds);
    `answered`: only those a host answered (not nginx's own 502)."""
    return [
        line[5].strip('"').split(", ")
        for line in site.nginx.access_lines()
        if float(line[0]) - float(line[1]) >= since
        and (uri is None or line[3] == uri)
        and not (answered and line[4].startswith("5"))
    ]


def address(host: hosts.Host) -> str:
    return f"{host.address}:{hosts.APP_PORT}"


def report(scenario: str, **figures: Any) -> None:
    """One line per scenario for the note: what was sent, what failed, what was counted."""
    print(f"\n[hosts] {scenario}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items()))


async def test_pages_through_nginx_come_from_every_host(site, engine):
    question_id, _ = publish_poll(engine, "Which host answers?", ("One", "Two"))
    origin = site.nginx.origin
    since = time.time()
    paths = ["/", f"/poll/{question_id}", f"/poll/{question_id}/results"] * 3
    async with hosts.site_session() as browser:
        pages = []
        for path in paths:
            async with browser.get(origin + path) as response:
                assert response.status == 200, path
                assert response.headers["X-Frame-Options"] == "DENY"  # the app's headers pass through
                pages.append(await response.text())
        async with browser.get(f"{origin}/static/style.css") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "public, max-age=600"  # nginx's, not the app's
            assert "text/css" in response.headers["Content-Type"]
            assert "Content-Security-Policy" not in response.headers  # the app never saw it
        async with browser.get(f"{origin}/healthz") as response:
            assert response.status == 200 and await response.text() == "ok\n"
        plain = f"http://{hosts.SERVER_NAME}:{site.nginx.http_port}/poll/{question_id}"
        async with browser.get(plain, allow_redirects=False) as response:
            assert response.status == 301
            assert response.headers["Location"] == f"https://{hosts.SERVER_NAME}/poll/{question_id}"
    assert all("Which host answers?" in page for page in pages)
    assert f'action="/poll/{question_id}/vote"' in pages[1]
    assert '<p class="total">Total: <span class="total-votes">0</span> votes</p>' in pages[2]
    served_by = {hop[-1] for hop in upstreams_of(site, since) if hop != ["-"]}
    assert served_by == {address(host) for host in site.hosts}
    report("pages", requests_sent=len(paths) + 3, failed=0, hosts_serving=len(served_by))


async def test_vote_through_nginx_redirects_to_results_that_show_it_on_any_host(site, engine):
    question_id, (one, two) = publish_poll(engine, "Vote behind nginx?", ("One", "Two"))
    origin = site.nginx.origin
    vote_url = f"{origin}/poll/{question_id}/vote"
    async with hosts.site_session() as browser:
        # What a browser sends with a form: https: true in the app's config makes this its own origin.
        response = await browser.post(
            vote_url, data={"choice": str(two)}, headers={"Origin": origin}, allow_redirects=False
        )
        assert response.status == 302
        assert response.headers["Location"] == f"/poll/{question_id}/results"
        cookie = response.cookies[VOTER_COOKIE]
        assert cookie["secure"] and cookie["httponly"]
        for _ in site.hosts:  # nginx takes each load to the next host: each shows the vote
            page = await (await browser.get(f"{origin}/poll/{question_id}/results")).text()
            assert '<span class="votes">1</span> vote ·' in page
            assert "(your vote)" in page
        again = await browser.post(  # the same choice again
            vote_url, data={"choice": str(two)}, headers={"Origin": origin}, allow_redirects=False
        )
        assert again.status == 302
        assert again.headers["Location"] == f"/poll/{question_id}/results?already=1"
        notice = await (await browser.get(origin + again.headers["Location"])).text()
        assert html.escape(ALREADY_VOTED) in notice
        forged = await browser.post(
            vote_url,
            data={"choice": str(one)},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        )
        assert forged.status == 403
    assert stored.counters(engine, question_id) == {one: 0, two: 1}
    assert assert_counters_match_vote_rows(engine, question_id) == 1
    report("vote", requests_sent=3 + len(site.hosts) + 1, failed=0, votes_answered=1, votes_counted=1)


async def test_new_poll_form_and_manage_page_through_nginx(site, engine, eventually):
    origin = site.nginx.origin
    form = [("question_text", "Made behind nginx?"), ("choice", "Yes"), ("choice", "No")]
    async with hosts.site_session() as maker, aiohttp.ClientSession() as direct:
        async with maker.get(f"{origin}/poll/new") as response:
            assert response.status == 200
            assert 'name="question_text"' in await response.text()
        response = await maker.post(
            f"{origin}/poll/new", data=form, headers={"Origin": origin}, allow_redirects=False
        )
        assert response.status == 303
        match = re.fullmatch(r"/poll/(\d+)/manage/([A-Za-z0-9_-]+)", response.headers["Location"])
        assert match, response.headers["Location"]
        question_id, manage = int(match[1]), match[0]
        page = await (await maker.get(origin + manage)).text()
        # Links are built from the Host nginx passes on and the config's https: what visitors use.
        assert f'id="public-link" value="{origin}/poll/{question_id}" readonly' in page
        assert f'id="private-link" value="{origin}{manage}" readonly' in page

        async def every_host_lists_it() -> bool:
            pages = [await (await direct.get(f"{host.url}/")).text() for host in site.hosts]
            return all("Made behind nginx?" in page for page in pages)

        await eventually(every_host_lists_it)
        closed = await maker.post(
            origin + manage, data={"action": "close"}, headers={"Origin": origin}, allow_redirects=False
        )
        assert closed.status == 303
        assert closed.headers["Location"] == f"{manage}?done=closed"
        yes = next(iter(stored.counters(engine, question_id)))
        for host in site.hosts:  # each host refuses at once: the vote checks the poll in its transaction
            refused = await direct.post(f"{host.url}/poll/{question_id}/vote", data={"choice": str(yes)})
            assert refused.status == 409
            assert html.escape(VOTING_CLOSED) in await refused.text()
    assert set(stored.counters(engine, question_id).values()) == {0}
    report(
        "new poll and manage", requests_sent=4 + len(site.hosts) * 2, failed=0, votes_refused=len(site.hosts)
    )


async def test_live_results_upgrade_through_nginx_gets_snapshot_and_updates(site, engine):
    question_id, (yes, no) = publish_poll(engine, "Live behind nginx?", ("Yes", "No"))
    origin = site.nginx.origin
    live = f"wss://{hosts.SERVER_NAME}:{site.nginx.https_port}/poll/{question_id}/live"
    async with (
        hosts.site_session() as watcher,
        hosts.site_session(cookie_jar=aiohttp.DummyCookieJar()) as voter,
        watcher.ws_connect(live, headers={"Origin": origin}) as ws,
    ):
        assert await frame(ws, timeout=10) == {
            "question_id": question_id,
            "total": 0,
            "closed": False,
            "choices": [{"id": yes, "votes": 0, "percent": 0.0}, {"id": no, "votes": 0, "percent": 0.0}],
        }
        for _ in range(3):  # through nginx, so through each host in turn
            response = await voter.post(
                f"{origin}/poll/{question_id}/vote", data={"choice": str(yes)}, allow_redirects=False
            )
            assert response.status == 302
        seen = await frame(ws, timeout=10)
        while seen["total"] < 3:
            seen = await frame(ws, timeout=10)
    assert counts(seen) == {yes: 3, no: 0}
    report(
        "live through nginx",
        websocket_upgrades=1,
        votes_answered=3,
        votes_counted=sum(stored.counters(engine, question_id).values()),
    )


async def test_watcher_on_one_host_sees_votes_cast_on_the_others_within_a_second(site, engine):
    question_id, (yes, no) = publish_poll(engine, "Across hosts?", ("Yes", "No"))
    watched, *others = site.hosts
    latencies = []
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.ws_connect(f"{watched.url}/poll/{question_id}/live") as ws,
    ):
        assert (await frame(ws, timeout=10))["total"] == 0
        for n, host in enumerate(others * 3, start=1):
            response = await session.post(
                f"{host.url}/poll/{question_id}/vote", data={"choice": str(no)}, allow_redirects=False
            )
            assert response.status == 302
            answered = time.monotonic()
            update = await frame(ws, timeout=1.0)
            latencies.append(time.monotonic() - answered)
            assert counts(update) == {yes: 0, no: n}
    assert max(latencies) < 1.0
    report(
        "watcher on host 1, votes on hosts 2 and 3",
        votes_answered=len(latencies),
        votes_counted=assert_counters_match_vote_rows(engine, question_id),
        slowest_update_s=f"{max(latencies):.3f}",
        median_s=f"{sorted(latencies)[len(latencies) // 2]:.3f}",
    )


VOTES = 2000
PAGE_LOADS = 2000
CONNECTIONS = 32
WATCHERS = 12  # over nginx's two workers' round robins: at least one on every host
KILL_AFTER = VOTES // 3  # votes answered before the host dies
KILL_NOTICED_S = 1.0  # generous bound on nginx seeing its kept-alive connections to the dead host close


@dataclass
class Request:
    method: str
    path: str
    started: float
    ended: float = 0.0
    status: int | None = None
    error: str | None = None
    voter: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == (302 if self.method == "POST" else 200)


@dataclass
class Watcher:
    """A live-results socket through nginx that reconnects, as static/live.js does."""

    url: str
    totals: list[int] = field(default_factory=list)
    dropped_at: float | None = None
    total_before_drop: int = 0
    resynced_at: float | None = None
    resync_total: int | None = None

    async def watch(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        for attempt in range(50):  # bounded: a watcher that cannot get back fails the test
            try:
                async with session.ws_connect(self.url) as ws:
                    snapshot = await frame(ws, timeout=10)
                    if self.dropped_at is not None and self.resynced_at is None:
                        self.resynced_at, self.resync_total = time.monotonic(), snapshot["total"]
                    self.totals.append(snapshot["total"])
                    while not stop.is_set():
                        message = await ws.receive(timeout=60)
                        if message.type is not aiohttp.WSMsgType.TEXT:
                            break
                        self.totals.append(json.loads(message.data)["total"])
                    if stop.is_set():
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if self.dropped_at is None:
                self.dropped_at, self.total_before_drop = time.monotonic(), max(self.totals, default=0)
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))  # back off, as the page's script does
        raise AssertionError(f"watcher {self.url} did not get back")


async def test_killed_host_mid_storm_loses_no_answered_vote_and_nginx_routes_around_it(
    site, engine, eventually
):
    choices_text = ("North", "South", "East", "West")
    question_id, choices = publish_poll(engine, "Storm?", choices_text)
    origin = site.nginx.origin
    victim = site.hosts[-1]
    jobs: list[tuple[str, str, int | None]] = []
    pages = ["/", f"/poll/{question_id}", f"/poll/{question_id}/results"]
    for i in range(max(VOTES, PAGE_LOADS)):
        if i < VOTES:
            jobs.append(("POST", f"/poll/{question_id}/vote", choices[i % len(choices)]))
        if i < PAGE_LOADS:
            jobs.append(("GET", pages[i % len(pages)], None))
    done: list[Request] = []
    answered_votes = 0
    kill_started = kill_ended = 0.0
    kill_epoch = 0.0  # the kill's end on the clock nginx logs with

    async def send(client: aiohttp.ClientSession, pending: Iterator[tuple[str, str, int | None]]) -> None:
        nonlocal answered_votes
        for method, path, choice in pending:
            request = Request(method, path, time.monotonic())
            try:
                data = None if choice is None else {"choice": str(choice)}
                async with client.request(
                    method, origin + path, data=data, allow_redirects=False
                ) as response:
                    await response.read()
                    request.status = response.status
                    if method == "POST" and response.status == 302:
                        request.voter = response.cookies[VOTER_COOKIE].value
                        answered_votes += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                request.error = type(exc).__name__
            request.ended = time.monotonic()
            done.append(request)

    async def kill_when_busy() -> list[int]:
        nonlocal kill_started, kill_ended, kill_epoch

        async def busy() -> bool:
            return answered_votes >= KILL_AFTER

        await eventually(busy, timeout=120)
        pids = await asyncio.to_thread(victim.pids)
        kill_started = time.monotonic()
        victim.kill(pids)
        kill_ended, kill_epoch = time.monotonic(), time.time()
        await asyncio.to_thread(victim.reap)
        return pids

    live_url = f"wss://{hosts.SERVER_NAME}:{site.nginx.https_port}/poll/{question_id}/live"
    watchers = [Watcher(live_url) for _ in range(WATCHERS)]
    stop_watching = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with (
            asyncio.timeout(600),
            hosts.site_session(
                limit=CONNECTIONS, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
            ) as client,
            hosts.site_session(limit=0) as watch_session,
        ):
            watching = [asyncio.create_task(w.watch(watch_session, stop_watching)) for w in watchers]

            async def all_watching() -> bool:
                return all(w.totals for w in watchers)

            await eventually(all_watching, timeout=30)
            started = time.monotonic()
            pending = iter(jobs)  # shared: each sender takes the next job
            killer = asyncio.create_task(kill_when_busy())
            await asyncio.gather(*(send(client, pending) for _ in range(CONNECTIONS)))
            storm_s = time.monotonic() - started
            pids = await killer
            final = len(stored.voters(engine, question_id))

            async def watchers_caught_up() -> bool:
                for task in watching:
                    if task.done():
                        task.result()  # a watcher that gave up fails the test here
                return all(w.totals and w.totals[-1] == final for w in watchers)

            await eventually(watchers_caught_up, timeout=30)
            stop_watching.set()
    finally:
        stop_watching.set()
        restart_s = None
        if victim.process is not None and victim.process.poll() is not None:
            # Back to three hosts for whatever runs next; the time it takes is a figure too.
            restart_s = await asyncio.to_thread(site.start_host, victim)

    assert len(pids) >= 1 + hosts.WORKERS  # the supervisor and its workers, all in the namespace
    assert len(done) == len(jobs)
    failed = [r for r in done if not r.ok]
    # GETs are passed to the next host by nginx (proxy_next_upstream error timeout): none fails.
    assert [r for r in failed if r.method == "GET"] == []
    # A vote fails only if it was on its way to the host when it died (or a moment later, before
    # nginx saw its connections close): nginx never sends a vote twice, so those answer 502 and
    # may or may not have been counted. After that moment nothing fails.
    assert all(r.status == 502 and r.started < kill_ended + KILL_NOTICED_S for r in failed), failed[:5]
    after_kill = [r for r in done if r.started >= kill_ended + KILL_NOTICED_S]
    assert after_kill and all(r.ok for r in after_kill)
    hops_after = upstreams_of(site, kill_epoch, answered=True)
    assert hops_after and not any(hop[-1] == address(victim) for hop in hops_after)  # the others answer
    retried = sum(len(hop) > 1 for hop in hops_after)  # tried the dead host first, then another

    voters = stored.voters(engine, question_id)
    answered = {r.voter for r in done if r.method == "POST" and r.ok}
    assert len(answered) == answered_votes  # every voter distinct
    assert answered <= voters  # every vote answered with a redirect is counted
    assert len(voters) - len(answered) <= len(failed)  # the rest only from votes cut off by the kill
    counted = assert_counters_match_vote_rows(engine, question_id)
    assert counted == len(voters)

    dropped = [w for w in watchers if w.dropped_at is not None]
    on_victim = [
        hop for hop in upstreams_of(site, 0, f"/poll/{question_id}/live") if hop[-1] == address(victim)
    ]
    assert 1 <= len(dropped) < WATCHERS  # the victim's watchers, and only those
    assert len(dropped) == len(on_victim)
    for w in dropped:
        assert w.resynced_at is not None and w.resync_total is not None
        assert w.resync_total >= w.total_before_drop  # a fresh snapshot, never an older count
    recovery = max((r.ended for r in failed), default=kill_started) - kill_started
    resync = max(w.resynced_at - kill_started for w in dropped)
    report(
        "host killed mid-storm",
        requests_sent=len(done),
        votes_sent=VOTES,
        page_loads=PAGE_LOADS,
        connections=CONNECTIONS,
        storm_s=f"{storm_s:.1f}",
        failed=f"{len(failed)} ({', '.join(sorted({str(r.status or r.error) for r in failed})) or 'none'})",
        failed_in_flight_at_kill=sum(r.started < kill_ended for r in failed),
        passed_on_by_nginx=retried,
        requests_from_1s_after_kill=len(after_kill),
        failed_from_1s_after_kill=0,
        votes_answered=len(answered),
        votes_counted=len(voters),
        vote_rows=counted,
        processes_killed=len(pids),
        last_failure_after_kill_s=f"{recovery:.3f}",
        watchers=WATCHERS,
        watchers_on_dead_host=len(dropped),
        watchers_resynced_within_s=f"{resync:.3f}",
        host_restarted_healthy_s=f"{restart_s:.1f}" if restart_s is not None else "n/a",
    )


@dataclass
class StormThroughNginx:
    """Votes (each from a voter id of its own, sent as the cookie, so every answer names its
    ballot) and page loads through nginx from `connections` clients, until `stop` is set."""

    site: hosts.Cluster
    question_id: int
    choices: list[int]
    connections: int = CONNECTIONS
    done: list[Request] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        origin = self.site.nginx.origin
        pages = ["/", f"/poll/{self.question_id}", f"/poll/{self.question_id}/results"]
        timeout = aiohttp.ClientTimeout(total=60)
        async with hosts.site_session(
            limit=self.connections, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
        ) as client:

            async def sender(n: int) -> None:
                for i in range(100_000):  # bounded; `stop` ends it long before
                    if self.stop.is_set():
                        return
                    if i % 2:
                        request = Request("GET", pages[(i // 2 + n) % len(pages)], time.monotonic())
                        data, headers = None, {}
                    else:
                        voter = secrets.token_urlsafe(18)
                        request = Request(
                            "POST", f"/poll/{self.question_id}/vote", time.monotonic(), voter=voter
                        )
                        data = {"choice": str(self.choices[(i + n) % len(self.choices)])}
                        headers = {"Cookie": f"{VOTER_COOKIE}={voter}"}
                    try:
                        async with client.request(
                            request.method,
                            origin + request.path,
                            data=data,
                            headers=headers,
                            allow_redirects=False,
                        ) as response:
                            await response.read()
                            request.status = response.status
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        request.error = type(exc).__name__
                    request.ended = time.monotonic()
                    self.done.append(request)

            await asyncio.gather(*(sender(n) for n in range(self.connections)))

    @property
    def votes(self) -> list[Request]:
        return [r for r in self.done if r.method == "POST"]

    @property
    def failed(self) -> list[Request]:
        return [r for r in self.done if not r.ok]

    def answered_voters(self) -> set[str]:
        return {r.voter for r in self.votes if r.ok}

    async def answered_more(self, count: int, eventually) -> None:
        """Until `count` more votes than now have been answered with the redirect."""
        target = len(self.answered_voters()) + count

        async def busy() -> bool:
            return len(self.answered_voters()) >= target

        await eventually(busy, timeout=120)

    def failures(self) -> str:
        """How many failed, and how many of each kind, e.g. `12 (GET 503: 4, POST 503: 8)`."""
        kinds = collections.Counter(f"{r.method} {r.status or r.error}" for r in self.failed)
        return f"{len(self.failed)} ({', '.join(f'{k}: {n}' for k, n in sorted(kinds.items())) or 'none'})"


async def back_in_rotation(site: hosts.Cluster, host: hosts.Host, since: float, eventually) -> None:
    """Until each nginx worker serving requests has passed one to `host` again: each shuns a
    host that refused it for fail_timeout (1 to 2 s in config/nginx.conf) on its own, and with
    the next host down a worker that still shuns this one has no host left for some requests."""

    async def answered_by_host() -> bool:
        lines = [line for line in site.nginx.access_lines() if float(line[0]) - float(line[1]) >= since]
        serving = {line[6] for line in lines}
        back = {
            line[6]
            for line in lines
            if line[5].strip('"').split(", ")[-1] == address(host) and not line[4].startswith("5")
        }
        return bool(serving) and back == serving

    await eventually(answered_by_host, timeout=60)


CUT_S = 10.0


async def test_host_cut_off_from_the_database_answers_503_then_recovers_by_itself_losing_no_vote(
    site, engine, eventually
):
    # Votes locked: a voter's retry with any choice must hear "already voted", never change it.
    question_id, choices = publish_poll(engine, "Cut off?", ("Up", "Down", "Sideways"), lock_votes=True)
    renamed_id, _ = publish_poll(engine, "Renamed during the cut?", ("Yes", "No"))
    victim = site.hosts[1]
    storm = StormThroughNginx(site, question_id, choices)
    direct_timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=direct_timeout) as direct,
        direct.ws_connect(f"{victim.url}/poll/{question_id}/live") as ws,
    ):
        assert (await frame(ws, timeout=10))["total"] == 0
        before = await (await direct.get(f"{victim.url}/poll/{renamed_id}")).text()
        assert "Renamed during the cut?" in before  # now in the victim's cache
        totals_seen: list[int] = []

        async def watch() -> None:
            while True:
                message = await ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    return
                totals_seen.append(json.loads(message.data)["total"])

        watching = asyncio.create_task(watch())
        storming = asyncio.create_task(storm.run())

        async def busy() -> bool:
            return len(storm.answered_voters()) >= 200

        await eventually(busy, timeout=120)
        cut_at = time.monotonic()
        victim.cut_database()
        try:
            # The host answers, but not from the database: /healthz says so for a balancer.
            healthz_503_s = None
            deadline = cut_at + CUT_S - 1
            while time.monotonic() < deadline:
                async with direct.get(f"{victim.url}/healthz") as response:
                    if response.status == 503:
                        healthz_503_s = time.monotonic() - cut_at
                        break
                await asyncio.sleep(0.1)
            assert healthz_503_s is not None, "/healthz never said 503 during the cut"
            async with direct.get(f"{victim.url}/poll/{renamed_id}") as response:
                page_status, page = response.status, await response.text()
            assert (page_status, page) == (200, before) or page_status == 503, page_status
            lost_voter = secrets.token_urlsafe(18)
            async with direct.post(
                f"{victim.url}/poll/{question_id}/vote",
                data={"choice": str(choices[0])},
                headers={"Cookie": f"{VOTER_COOKIE}={lost_voter}"},
                allow_redirects=False,
            ) as response:
                vote_status, text = response.status, await response.text()
                # The host stepped aside ("unavailable"), or the vote's deadline came: before
                # it was sent (not counted), or after, unanswered (it may have counted).
                assert vote_status in (503, 202), vote_status
                if vote_status == 503:
                    assert "unavailable" in text or NOT_COUNTED in text
                else:
                    assert html.escape(VOTE_UNKNOWN) in text
            # A change made elsewhere meanwhile: its notice cannot reach the host now.
            with engine.begin() as conn:
                conn.execute(
                    sa.update(schema.question)
                    .where(schema.question.c.id == renamed_id)
                    .values(question_text="Renamed while cut off")
                )
            await asyncio.sleep(max(0.0, cut_at + CUT_S - time.monotonic()))
        finally:
            victim.restore_database()
        restored_at = time.monotonic()

        async def healthy() -> bool:
            async with direct.get(f"{victim.url}/healthz") as response:
                return response.status == 200

        await eventually(healthy, timeout=60)
        healthy_s = time.monotonic() - restored_at

        async def fresh() -> bool:
            async with direct.get(f"{victim.url}/poll/{renamed_id}") as response:
                return response.status == 200 and "Renamed while cut off" in await response.text()

        await eventually(fresh, timeout=60)
        fresh_s = time.monotonic() - restored_at
        await back_in_rotation(site, victim, time.time(), eventually)
        storm.stop.set()
        await storming
        final = len(stored.voters(engine, question_id))

        async def watcher_resynced() -> bool:
            return bool(totals_seen) and totals_seen[-1] == final

        try:
            await eventually(watcher_resynced, timeout=60)
        except AssertionError:
            raise AssertionError(
                f"watcher on the cut host at {totals_seen[-3:]}, {final} counted, "
                f"watching ended: {watching.done()}\n"
                + "\n".join(
                    line
                    for line in victim.log().splitlines()
                    if "votes:" not in line and "middlewares" not in line
                )[-5000:]
            ) from None
        resynced_s = time.monotonic() - restored_at
        watching.cancel()

    voters = stored.voters(engine, question_id)
    answered = storm.answered_voters()
    assert answered <= voters  # every vote answered with the redirect is counted
    # A ballot with no redirect: only a vote answered "may have counted" (202), sent by the
    # cut-off host before its deadline and unanswered; a batch that reached PostgreSQL after
    # its deadline kept nothing, so a 503 is never counted. Never doubled: the voter trying
    # again hears "already voted".
    unanswered = {r.voter: r for r in storm.votes if not r.ok and r.voter in voters}
    assert all(r.status == 202 and r.started < restored_at for r in unanswered.values())
    if lost_voter in voters:  # the direct vote during the cut, the same way
        assert vote_status == 202
        unanswered[lost_voter] = Request("POST", "direct", cut_at, status=vote_status, voter=lost_voter)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as retry:
        for voter in list(unanswered)[:20]:
            again = await retry.post(
                f"{victim.url}/poll/{question_id}/vote",
                data={"choice": str(choices[0])},
                headers={"Cookie": f"{VOTER_COOKIE}={voter}"},
                allow_redirects=False,
            )
            assert again.status == 302
            assert again.headers["Location"] == f"/poll/{question_id}/results?already=1"
    assert stored.voters(engine, question_id) == voters
    counted = assert_counters_match_vote_rows(engine, question_id)
    assert counted == len(voters)
    report(
        "host cut off from the database for 10 s",
        requests_sent=len(storm.done),
        failed=storm.failures(),
        votes_sent=len(storm.votes),
        votes_answered=len(answered),
        votes_counted=len(voters),
        vote_rows=counted,
        counted_without_answer=len(unanswered),
        healthz_503_after_s=f"{healthz_503_s:.2f}",
        cut_host_page=page_status,
        cut_host_vote=vote_status,
        healthy_after_restore_s=f"{healthy_s:.2f}",
        change_shown_after_restore_s=f"{fresh_s:.2f}",
        watcher_resynced_after_restore_s=f"{resynced_s:.2f}",
    )


READS_FOR_S = 5.0  # long enough for each nginx worker to pass the cut host over and try it again


async def test_read_a_cut_off_host_answers_503_goes_on_to_another_and_that_host_is_passed_over_for_a_second(
    site, eventually
):
    victim = site.hosts[2]
    origin = site.nginx.origin
    async with aiohttp.ClientSession() as direct, hosts.site_session() as reader:

        async def healthz(host: hosts.Host) -> int:
            async with direct.get(f"{host.url}/healthz") as response:
                return response.status

        victim.cut_database()
        try:

            async def victim_says_503() -> bool:
                return await healthz(victim) == 503

            await eventually(victim_says_503, timeout=30)
            since = time.time()
            statuses: Counter = Counter()
            while time.time() - since < READS_FOR_S:  # one reader after another, as pages load
                async with reader.get(f"{origin}/healthz") as response:
                    statuses[response.status] += 1
        finally:
            victim.restore_database()

        async def victim_healthy() -> bool:
            return await healthz(victim) == 200

        await eventually(victim_healthy, timeout=60)
    reads = [line for line in site.nginx.access_lines() if float(line[0]) - float(line[1]) >= since]
    reads = [line for line in reads if line[3] == "/healthz"]
    assert statuses == {200: len(reads)}, statuses  # not one read failed
    went_on = [line for line in reads if line[5].strip('"').split(", ")[:1] == [address(victim)]]
    assert went_on and all(line[5].strip('"').split(", ")[-1] != address(victim) for line in went_on)
    # Each worker passes the cut host over for fail_timeout (1 s, counted by nginx in whole
    # seconds: 1 to 2 s) after it failed, then tries it again: from the end of one read that
    # tried it to the start of the next.
    gaps = []
    for worker in {line[6] for line in went_on}:
        tried = sorted(
            (float(line[0]) - float(line[1]), float(line[0])) for line in went_on if line[6] == worker
        )
        gaps += [later[0] - earlier[1] for earlier, later in itertools.pairwise(tried)]
    assert gaps, "no worker tried the cut host twice"
    assert min(gaps) >= 0.9 and max(gaps) < 2.5, gaps
    report(
        "reads while a host is cut off from the database",
        reads=len(reads),
        failed=0,
        reads_that_tried_the_cut_host=len(went_on),
        cut_host_tried_again_after_s=", ".join(f"{gap:.2f}" for gap in sorted(gaps)),
        slowest_read_s=f"{max(float(line[1]) for line in reads):.3f}",
    )


def answers(requests: list[Request]) -> str:
    """How many requests got each status (or error), e.g. `302: 900, 503: 12`."""
    kinds = collections.Counter(str(r.status or r.error) for r in requests)
    return ", ".join(f"{kind}: {n}" for kind, n in sorted(kinds.items())) or "none"


def longest(requests: list[Request]) -> float:
    return max((r.ended - r.started for r in requests), default=0.0)


PARTITION_S = 40.0


async def test_host_cut_off_for_40_s_in_a_storm_fails_no_read_and_never_counts_a_vote_answered_as_failed(
    site, engine, eventually
):
    question_id, choices = publish_poll(engine, "Partitioned?", ("Ay", "Nay", "Abstain"))
    victim = site.hosts[0]
    storm = StormThroughNginx(site, question_id, choices)
    storming = asyncio.create_task(storm.run())
    try:
        await storm.answered_more(200, eventually)
        cut_at = time.monotonic()
        victim.cut_database()
        try:
            stepped_aside_s = await first_status(victim, 503, cut_at + PARTITION_S) - cut_at
            await asyncio.sleep(max(0.0, cut_at + PARTITION_S - time.monotonic()))
        finally:
            victim.restore_database()
        restored_at = time.monotonic()
        healthy_s = await first_status(victim, 200, restored_at + 60) - restored_at
        await back_in_rotation(site, victim, time.time(), eventually)
        rotation_s = time.monotonic() - restored_at
    finally:
        storm.stop.set()
        await storming

    voters = stored.voters(engine, question_id)
    votes = storm.votes
    answered = {r.voter for r in votes if r.status == 302}
    maybe = {r.voter for r in votes if r.status == 202}  # "may have counted": either way is true
    failed = [r for r in votes if r.status not in (302, 202)]
    assert answered <= voters  # every vote answered with the redirect is counted
    counted_after_failure = {r.voter for r in failed} & voters
    assert not counted_after_failure, [r for r in failed if r.voter in counted_after_failure][:5]
    assert voters <= answered | maybe
    counted = assert_counters_match_vote_rows(engine, question_id)
    assert counted == len(voters)  # one vote per ballot: none counted twice
    reads = [r for r in storm.done if r.method == "GET"]
    in_cut = [r for r in storm.done if r.started < restored_at and r.ended > cut_at]
    reads_in_cut = [r for r in in_cut if r.method == "GET"]
    failures_after = [r.started - restored_at for r in storm.failed if r.started >= restored_at]
    report(
        f"host cut off from the database for {PARTITION_S:.0f} s in a storm",
        requests_sent=len(storm.done),
        failed=storm.failures(),
        reads_sent=len(reads),
        reads_in_cut=len(reads_in_cut),
        reads_failed=f"{sum(not r.ok for r in reads)} ({answers([r for r in reads if not r.ok])})",
        longest_read_in_cut_s=f"{longest(reads_in_cut):.2f}",
        longest_read_s=f"{longest(reads):.2f}",
        votes_sent=len(votes),
        votes_by_answer=answers(votes),
        votes_in_cut_by_answer=answers([r for r in in_cut if r.method == "POST"]),
        votes_answered=len(answered),
        votes_may_have_counted=f"{len(maybe)} ({len(maybe & voters)} counted)",
        votes_counted=len(voters),
        vote_rows=counted,
        counted_without_answer=len(voters - answered - maybe),
        counted_after_failure=len(counted_after_failure),
        stepped_aside_after_cut_s=f"{stepped_aside_s:.2f}",
        healthy_after_restore_s=f"{healthy_s:.2f}",
        back_in_rotation_after_restore_s=f"{rotation_s:.2f}",
        last_failure_after_restore_s=f"{max(failures_after):.2f}" if failures_after else "none",
    )
    # nginx passes a read the cut-off host answered 503 (or not in time) on to another host:
    # proxy_next_upstream in config/nginx.conf. Votes are never passed on.
    failed_reads = [r for r in reads if not r.ok]
    assert failed_reads == [], f"{len(failed_reads)} reads failed: {answers(failed_reads)}"


async def first_status(host: hosts.Host, status: int, deadline: float) -> float:
    """When (monotonic) the host's /healthz first answers `status`, polled every 0.1 s."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as direct:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with direct.get(f"{host.url}/healthz") as response:
                    if response.status == status:
                        return time.monotonic()
            await asyncio.sleep(0.1)
    raise AssertionError(f"host {host.number}: /healthz never answered {status}")


# Rounds of terminations, each once more votes have been answered: at least the first
# number, then until a batch in flight has been hit (most rounds hit none: a vote spends
# most of its time in HTTP, not in the database).
TERMINATIONS = (3, 20)


async def test_terminated_server_connections_in_a_storm_are_voted_on_again_and_counted_once(
    site, engine, eventually
):
    question_id, choices = publish_poll(engine, "Terminated?", ("Here", "There"))
    storm = StormThroughNginx(site, question_id, choices)
    logged_before = set(resends(site))
    storming = asyncio.create_task(storm.run())
    rounds: list[tuple[float, int]] = []  # (when, backends terminated)
    try:
        for _ in range(TERMINATIONS[1]):
            await storm.answered_more(100, eventually)
            if len(rounds) >= TERMINATIONS[0] and set(resends(site)) - logged_before:
                break
            terminated, server_time = terminate_app_backends(engine)
            rounds.append((time.monotonic(), terminated))
        terminated_at = rounds[-1][0]

        async def listening_again() -> bool:
            return listeners_since(engine, server_time) == len(site.hosts) * hosts.WORKERS

        await eventually(listening_again, timeout=60)
        listening_s = time.monotonic() - terminated_at
        await storm.answered_more(300, eventually)  # votes go on after the last round
    finally:
        storm.stop.set()
        await storming

    voters = stored.voters(engine, question_id)
    votes = storm.votes
    answered = storm.answered_voters()
    maybe = {r.voter for r in votes if r.status == 202}
    lost = [LOST.search(line) for line in resends(site) if line not in logged_before]
    sent_again = sum(int(batch["again"]) for batch in lost)
    lost_twice = sum(int(batch["size"]) - int(batch["again"]) for batch in lost)
    near = [r for r in votes for at, _ in rounds if at - 1 <= r.started <= at + 1]
    report(
        "app's server connections terminated in a storm",
        requests_sent=len(storm.done),
        failed=storm.failures(),
        rounds=len(rounds),
        backends_terminated=", ".join(str(n) for _, n in rounds),
        votes_sent=len(votes),
        votes_by_answer=answers(votes),
        votes_answered=len(answered),
        votes_may_have_counted=f"{len(maybe)} ({len(maybe & voters)} counted)",
        votes_counted=len(voters),
        counted_without_answer=len(voters - answered - maybe),
        batches_lost=len(lost),
        votes_sent_again=sent_again,
        votes_lost_twice=lost_twice,
        slowest_vote_within_1s_of_a_termination_s=f"{longest(near):.3f}",
        reads_failed=answers([r for r in storm.done if r.method == "GET" and not r.ok]),
        listening_again_after_s=f"{listening_s:.2f}",
    )
    assert lost, f"no vote was in flight on a terminated connection in {len(rounds)} rounds"
    # Sent again on another connection and answered: a lost connection is no cause for a 503.
    # Only a vote whose second connection was lost too (the same sweep of terminations took
    # both) may have counted (202).
    assert {r.status for r in votes} <= {302, 202}, answers(votes)
    assert len(maybe) == lost_twice
    assert answered <= voters <= answered | maybe
    counted = assert_counters_match_vote_rows(engine, question_id)
    assert counted == len(voters)  # one vote per ballot: none counted twice


def terminate_app_backends(engine: sa.engine.Engine) -> tuple[int, datetime]:
    """pg_terminate_backend on every server process of the app's role: PgBouncer's server
    connections and the hosts' LISTEN connections, as a failover or an operator would.
    How many, and the server's clock just after."""
    with engine.connect() as conn:
        terminated = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)), clock_timestamp() FROM pg_stat_activity "
                "WHERE usename = :role AND datname = :db AND application_name <> :test"
            ),
            {"role": hosts.DB_USER, "db": hosts.DB_NAME, "test": TEST_CLIENT},
        )
        count, server_time = terminated.one()
        return count, server_time


def listeners_since(engine: sa.engine.Engine, since: datetime) -> int:
    """The hosts' LISTEN connections opened after `since`: the app's role connecting from
    elsewhere than this machine (PgBouncer connects from 127.0.0.1)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = :role AND datname = :db "
                "AND client_addr <> '127.0.0.1' AND backend_start > :since"
            ),
            {"role": hosts.DB_USER, "db": hosts.DB_NAME, "since": since},
        ).scalar_one()


LOST = re.compile(
    r"vote batch of (?P<size>\d+): connection lost \((?P<reason>.*)\); sending (?P<again>\d+) again$"
)


def resends(site: hosts.Cluster) -> list[str]:
    """Every host's log lines for a vote batch whose connection was lost (see LOST)."""
    return [
        f"{host.number} {line}"
        for host in site.hosts
        for line in host.log().splitlines()
        if LOST.search(line)
    ]


async def test_rolling_restart_under_a_storm_fails_no_request_and_loses_no_vote(site, engine, eventually):
    question_id, choices = publish_poll(engine, "Rolling?", ("Left", "Right"))
    storm = StormThroughNginx(site, question_id, choices)
    storming = asyncio.create_task(storm.run())
    restarts = []
    signalled: list[tuple[int, float]] = []  # (host, when SIGTERM was sent): to place a failure
    try:

        async def busy() -> bool:
            return len(storm.answered_voters()) >= 200

        await eventually(busy, timeout=120)
        for host in site.hosts:
            started = time.monotonic()
            signalled.append((host.number, started))
            status = await asyncio.to_thread(host.terminate)
            stopped_s = time.monotonic() - started
            assert status == 0, host.log()[-3000:]
            healthy_s = await asyncio.to_thread(site.start_host, host)
            # Counted from now: what the old process answered while it drained is not the new one.
            await back_in_rotation(site, host, time.time(), eventually)
            restarts.append((stopped_s, healthy_s, time.monotonic() - started))
    finally:
        storm.stop.set()
        await storming
        for host in site.hosts:  # whatever happened, three hosts for what runs next
            if host.process is None or host.process.poll() is not None:
                await asyncio.to_thread(site.start_host, host)

    def placed(request: Request) -> str:
        before = [s for s in signalled if s[1] <= request.started]
        host, at = before[-1] if before else (0, request.started)
        what = f"{request.method} {request.path} {request.status or request.error}"
        return f"{what}, sent {request.started - at:.3f} s after SIGTERM to host {host}"

    failed = storm.failed
    assert failed == [], "\n".join(map(placed, failed[:10])) + f"\n{site.nginx.error_log()}"
    voters = stored.voters(engine, question_id)
    assert voters == storm.answered_voters()
    counted = assert_counters_match_vote_rows(engine, question_id)
    assert counted == len(voters)
    report(
        "rolling restart (SIGTERM, start, /healthz, back in nginx's rotation; each host in turn)",
        requests_sent=len(storm.done),
        failed=storm.failures(),
        votes_sent=len(storm.votes),
        votes_answered=len(storm.answered_voters()),
        votes_counted=len(voters),
        vote_rows=counted,
        stop_s=", ".join(f"{r[0]:.1f}" for r in restarts),
        healthy_after_start_s=", ".join(f"{r[1]:.1f}" for r in restarts),
        host_back_in_rotation_s=", ".join(f"{r[2]:.1f}" for r in restarts),
    )


WATCHERS_ON_ONE_HOST = 2000
HANDSHAKES_AT_ONCE = 100  # in flight at a time, well under the host's listen backlog


@dataclass
class Follower:
    """A live-results socket through nginx, read to its end as a page reads it (answering pings)."""

    ws: aiohttp.ClientWebSocketResponse
    total: int
    reader: asyncio.Task | None = None

    async def follow(self) -> None:
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.total = json.loads(message.data)["total"]


async def follow(session: aiohttp.ClientSession, url: str, failed: Counter) -> Follower | None:
    """One socket past its snapshot, or None with why in `failed`."""
    try:
        async with asyncio.timeout(60):
            ws = await session.ws_connect(url)
            snapshot = await frame(ws, timeout=60)
    except aiohttp.WSServerHandshakeError as exc:
        failed[f"handshake {exc.status}"] += 1
        return None
    except (aiohttp.ClientError, TimeoutError, AssertionError) as exc:
        failed[type(exc).__name__] += 1
        return None
    follower = Follower(ws, snapshot["total"])
    follower.reader = asyncio.create_task(follower.follow())
    return follower


async def test_one_host_carries_two_thousand_watchers_through_nginx_and_each_gets_the_next_update(
    site, engine, eventually
):
    question_id, (yes, _) = publish_poll(engine, "A crowd on one host?", ("Yes", "No"))
    host = site.hosts[0]
    followers: list[Follower] = []
    failed: Counter = Counter()
    # This process holds every visitor's socket; nginx and the host hold theirs in their own.
    with open_files_limit(WATCHERS_ON_ONE_HOST + 1024):
        nginx = hosts.Nginx(site.nginx.prefix.parent / "nginx-one-host", [address(host)])
        try:
            nginx.start()
            url = f"wss://{hosts.SERVER_NAME}:{nginx.https_port}/poll/{question_id}/live"
            async with hosts.site_session(limit=0, cookie_jar=aiohttp.DummyCookieJar()) as visitors:
                try:
                    started = time.monotonic()
                    for first in range(0, WATCHERS_ON_ONE_HOST, HANDSHAKES_AT_ONCE):
                        batch = range(first, min(first + HANDSHAKES_AT_ONCE, WATCHERS_ON_ONE_HOST))
                        opened = await asyncio.gather(*(follow(visitors, url, failed) for _ in batch))
                        followers += [f for f in opened if f is not None]
                    open_s = time.monotonic() - started
                    assert not failed, f"{len(followers)} watchers opened; the others: {dict(failed)}"
                    assert {f.total for f in followers} == {0}
                    response = await visitors.post(
                        f"{nginx.origin}/poll/{question_id}/vote",
                        data={"choice": str(yes)},
                        headers={"Origin": nginx.origin},
                        allow_redirects=False,
                    )
                    assert response.status == 302
                    voted = time.monotonic()

                    async def everyone_has_it() -> bool:
                        return all(f.total == 1 for f in followers)

                    try:
                        await eventually(everyone_has_it, timeout=60)
                    except AssertionError:
                        behind = sum(f.total != 1 for f in followers)
                        raise AssertionError(
                            f"{behind} of {len(followers)} watchers never got the vote"
                        ) from None
                    update_s = time.monotonic() - voted
                    still_open = sum(not f.ws.closed for f in followers)
                finally:
                    async with asyncio.timeout(60):
                        await asyncio.gather(*(f.ws.close() for f in followers), return_exceptions=True)
                    for f in followers:
                        if f.reader is not None:
                            f.reader.cancel()
                    await asyncio.gather(*(f.reader for f in followers if f.reader), return_exceptions=True)

            def handshakes() -> list[list[str]]:  # nginx logs a WebSocket when it closes
                return [line for line in nginx.access_lines() if line[3] == f"/poll/{question_id}/live"]

            async def all_logged() -> bool:
                return len(handshakes()) >= WATCHERS_ON_ONE_HOST

            await eventually(all_logged, timeout=30)
            logged = handshakes()
        finally:
            nginx.stop()
    assert still_open == WATCHERS_ON_ONE_HOST
    assert Counter(line[4] for line in logged) == {"101": WATCHERS_ON_ONE_HOST}
    assert {line[5].strip('"') for line in logged} == {address(host)}
    report(
        "2,000 watchers through nginx on one host",
        watchers=len(followers),
        handshakes_failed=0,
        opened_in_s=f"{open_s:.1f}",
        vote_to_last_watcher_s=f"{update_s:.3f}",
        nginx_workers=len({line[6] for line in logged}),
    )
