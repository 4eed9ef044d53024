"""Prometheus metrics: counted where things happen, served on a port of their own (never the
site's), and added up across gunicorn's workers by the master."""

import asyncio
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil
import pytest
import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from aiohttpdemo_polls import metrics, serve, settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.store import schema

POOL_MAX = 10  # config/polls_test.yaml's database.pool_max


async def scrape(port: int) -> list[Sample]:
    """Every sample the metrics port serves, parsed as Prometheus parses it."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` that carry these labels (0 when there are none)."""
    return sum(
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def requests(samples: list[Sample], route: str, method: str, status: int) -> float:
    return value(samples, "polls_http_requests_total", route=route, method=method, status=str(status))


async def open_watchers(base: str, question_id: int, count: int) -> list[aiohttp.ClientSession]:
    """`count` live-results sockets on their own connections, each past its first snapshot."""
    sessions = []
    for _ in range(count):
        session = aiohttp.ClientSession()
        sessions.append(session)
        ws = await session.ws_connect(f"{base}/poll/{question_id}/live")
        assert '"question_id"' in (await ws.receive_str(timeout=30))
        session.ws = ws
    return sessions


def terminate_listeners(sync_engine: sa.engine.Engine) -> int:
    """Cut the app's LISTEN connections from the server side, as a failover would."""
    with sync_engine.begin() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query = :listen AND pid <> pg_backend_pid()"
                ),
                {"listen": f"LISTEN {schema.CHANNEL}"},
            ).all()
        )


@pytest.mark.slow
async def test_one_process_counts_requests_votes_watchers_cache_and_reconnects(
    app_process, make_question, new_browser, vote, votes_of, sync_engine, eventually, unused_tcp_port_factory
):
    question = make_question("Counted?")
    metrics_port = unused_tcp_port_factory()
    app = app_process(env={"POLLS_METRICS_PORT": str(metrics_port)})
    app.wait_serving()
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in app.log()

    # First, while the process's LISTEN is fresh: the database drops it, the app listens again.
    assert terminate_listeners(sync_engine) == 1

    async def reconnected() -> bool:
        return value(await scrape(metrics_port), "polls_listener_reconnects_total") == 1

    await eventually(reconnected, timeout=30)

    browser = new_browser(app.url)
    poll = f"/poll/{question['id']}"
    for _ in range(3):
        async with browser.get(poll) as response:
            assert response.status == 200
    assert (await vote(browser, question["id"], question["choices"][0])).status == 302
    async with browser.get("/no/such/page") as response:
        assert response.status == 404

    async def counted() -> bool:  # a process writes what it counted once a second
        return requests(await scrape(metrics_port), "unmatched", "GET", 404) == 1

    await eventually(counted)
    samples = await scrape(metrics_port)
    assert requests(samples, "poll", "GET", 200) == 3
    assert requests(samples, "vote", "POST", 302) == 1
    assert requests(samples, "unmatched", "GET", 404) == 1
    assert value(samples, "polls_http_request_duration_seconds_count", route="poll") == 3
    assert value(samples, "polls_http_request_duration_seconds_bucket", route="poll", le="+Inf") == 3
    assert (
        value(samples, "polls_votes_total", outcome="counted") == 1 == sum(votes_of(question["id"]).values())
    )
    assert value(samples, "polls_vote_batch_size_count") == 1
    assert value(samples, "polls_vote_batch_size_sum") == 1
    # The first page load rendered the page; the others came from memory.
    hits = value(samples, "polls_cache_hits_total", kind="poll")
    misses = value(samples, "polls_cache_misses_total", kind="poll")
    assert hits + misses == 3 and hits >= 1 and misses >= 1
    in_use = value(samples, "polls_db_pool_connections_in_use")
    assert 0 <= in_use <= POOL_MAX

    watchers = await open_watchers(app.url, question["id"], 2)

    async def watching(n: int) -> bool:
        return value(await scrape(metrics_port), "polls_live_watchers") == n

    try:
        await eventually(lambda: watching(2), timeout=30)
    finally:
        # Each socket closed before its session, so no connection is left to the garbage collector.
        await asyncio.gather(*(session.ws.close() for session in watchers))
        await asyncio.gather(*(session.close() for session in watchers))
    await eventually(lambda: watching(0), timeout=30)

    # The site itself never serves them.
    async with browser.get("/metrics") as response:
        assert response.status == 404
    assert "Traceback" not in app.log()


@pytest.mark.slow
async def test_two_workers_are_added_up_by_the_master_and_a_dead_workers_watchers_go(
    app_process, make_question, votes_of, eventually, unused_tcp_port_factory
):
    question = make_question("Added up?")
    metrics_port = unused_tcp_port_factory()
    app = app_process("--workers", "2", env={"POLLS_METRICS_PORT": str(metrics_port)})
    app.wait_serving(2)
    workers = [psutil.Process(pid) for pid in app.serving_pids()]
    port = int(app.url.rsplit(":", 1)[1])
    folder = Path(re.search(r"metrics on http://\S+, added up from (\S+)", app.log())[1])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # private to the app's user

    def connections_of(worker: psutil.Process) -> int:
        return sum(
            1
            for conn in worker.net_connections(kind="tcp")
            if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port
        )

    # Rounds of sixteen fresh connections (a page and a vote each) until both workers held some.
    pages, votes = 0, 0
    served: set[int] = set()
    for _ in range(50):
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:

            async def page_and_vote(n: int) -> tuple[int, int]:
                async with session.get(f"{app.url}/poll/{question['id']}") as page:
                    await page.read()
                choice = question["choices"][n % len(question["choices"])]
                url = f"{app.url}/poll/{question['id']}/vote"
                async with session.post(url, data={"choice": str(choice)}, allow_redirects=False) as answer:
                    return page.status, answer.status

            statuses = await asyncio.gather(*(page_and_vote(n) for n in range(16)))
            assert statuses == [(200, 302)] * 16
            pages, votes = pages + 16, votes + 16
            served |= {w.pid for w in workers if connections_of(w)}
        if len(served) == 2:
            break
    assert len(served) == 2, "both workers served"

    async def counted() -> bool:  # each worker writes what it counted once a second
        samples = await scrape(metrics_port)
        return (
            requests(samples, "poll", "GET", 200) == pages and requests(samples, "vote", "POST", 302) == votes
        )

    await eventually(counted)
    samples = await scrape(metrics_port)
    assert requests(samples, "poll", "GET", 200) == pages
    assert requests(samples, "vote", "POST", 302) == votes
    assert value(samples, "polls_http_request_duration_seconds_count", route="poll") == pages
    assert (
        value(samples, "polls_votes_total", outcome="counted")
        == votes
        == sum(votes_of(question["id"]).values())
    )
    assert value(samples, "polls_vote_batch_size_sum") == votes
    assert 1 <= value(samples, "polls_vote_batch_size_count") <= votes
    lookups = value(samples, "polls_cache_hits_total", kind="poll") + value(
        samples, "polls_cache_misses_total", kind="poll"
    )
    assert lookups == pages
    assert 0 <= value(samples, "polls_db_pool_connections_in_use") <= 2 * POOL_MAX

    # Watchers on both workers; one worker dies: its watchers no longer count, its counters do.
    watchers = await open_watchers(app.url, question["id"], 8)
    try:

        async def watching(n: int) -> bool:
            return value(await scrape(metrics_port), "polls_live_watchers") == n

        await eventually(lambda: watching(8), timeout=30)
        survivor_watchers = connections_of(workers[1])
        workers[0].kill()
        await eventually(lambda: watching(survivor_watchers), timeout=30)
        samples = await scrape(metrics_port)
        assert requests(samples, "vote", "POST", 302) == votes
    finally:
        # Each socket closed before its session, so no connection is left to the garbage collector.
        await asyncio.gather(*(session.ws.close() for session in watchers))
        await asyncio.gather(*(session.close() for session in watchers))
    await eventually(lambda: watching(0), timeout=30)

    async with aiohttp.ClientSession() as session, session.get(f"{app.url}/metrics") as response:
        assert response.status == 404

    app.process.send_signal(signal.SIGTERM)
    assert app.wait_exit(serve.SHUTDOWN_TIMEOUT + 10) == 0
    assert not folder.exists(), "the master removes its folder"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_port_taken_stops_the_server_and_says_so(app_process, unused_tcp_port, workers):
    with socket.create_server(("127.0.0.1", unused_tcp_port)):  # another program listens there
        app = app_process("--workers", workers, env={"POLLS_METRICS_PORT": str(unused_tcp_port)})
        assert app.wait_exit(60) == 1
    assert f"cannot serve metrics on 127.0.0.1:{unused_tcp_port} (metrics.port)" in app.log()
    assert "Traceback" not in app.log()


def test_metrics_port_comes_from_the_environment_and_zero_turns_them_off(config):
    assert settings.load(None, {"POLLS_METRICS_PORT": "9200"})["metrics"] == {
        "host": "127.0.0.1",
        "port": 9200,
    }
    assert config["metrics"]["port"] == 0  # the test settings: off
    app = init_app(config=config)
    assert not any(m.__name__ == "count_requests" for m in app.middlewares)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"POLLS_METRICS_PORT": "8080", "POLLS_PORT": "8080"}, "metrics.port: must not be the site's port"),
        ({"POLLS_METRICS_PORT": "metrics"}, "metrics.port: "),
        ({"POLLS_METRICS_PORT": "70000"}, "metrics.port: "),
    ],
)
def test_bad_metrics_port_names_the_key(environ, expected):
    with pytest.raises(settings.ConfigError, match=re.escape(expected)):
        settings.load(None, environ)


def test_latencies_tallied_then_written_at_once_read_as_if_observed_one_by_one():
    from prometheus_client import CollectorRegistry, Histogram

    def histogram() -> Histogram:
        return Histogram("latency", "Latency.", registry=CollectorRegistry(), buckets=metrics.LATENCY_BUCKETS)

    latencies = [0.0002, 0.001, 0.0010001, 0.003, 0.0999, 0.1, 0.7, 1.0, 3.5]
    one_by_one, at_once = histogram(), histogram()
    tallied = [0.0] * (len(metrics.LATENCY_BUCKETS) + 2)
    for seconds in latencies:
        one_by_one.observe(seconds)
        metrics._tally(tallied, seconds)
    metrics._observed(at_once, tallied)
    observed = [
        (s.name, s.labels, s.value) for s in one_by_one.collect()[0].samples if s.name != "latency_created"
    ]
    written = [
        (s.name, s.labels, s.value) for s in at_once.collect()[0].samples if s.name != "latency_created"
    ]
    assert written == observed
    assert ("latency_bucket", {"le": "0.001"}, 2.0) in written and (
        "latency_count",
        {},
        len(latencies),
    ) in written


def test_the_app_does_not_import_prometheus_client_before_the_master_chooses_its_mode():
    # prometheus_client picks per-process memory or shared files when imported: a gunicorn
    # master that imported it before setting its folder would leave every worker counting alone.
    code = "import sys, aiohttpdemo_polls.serve; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert result.stdout.strip() == "False"


def test_prometheus_sample_scrapes_the_production_metrics_port():
    sample = yaml.safe_load((settings.PROJECT_ROOT / "config" / "prometheus.yml").read_text())
    (job,) = sample["scrape_configs"]
    production = settings.load(settings.PROJECT_ROOT / "config" / "production.yaml", {})
    assert production["metrics"] == {"host": "127.0.0.1", "port": 9101}
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["127.0.0.1:9101"]


def test_metrics_are_off_unless_configured_so_that_copies_of_the_app_can_share_a_machine():
    assert settings.SCHEMA.check({})["metrics"]["port"] == 0, "built-in settings (an installed app)"
    assert settings.load(settings.DEFAULT_CONFIG, {})["metrics"]["port"] == 0, "config/polls.yaml"
    assert settings.load(settings.DEFAULT_CONFIG, {"POLLS_METRICS_PORT": "9101"})["metrics"]["port"] == 9101
