"""Prometheus metrics of this process, or of all a host's gunicorn workers added up.
prometheus-client decides at import whether values live in memory or in the files a master
adds up, so it is imported only in `setup()` and `start_exporter()`, once that is settled.
"""

import asyncio
import contextlib
import enum
import glob
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# A page served from the cache takes about a millisecond; a second is far past any answer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # votes.MAX_BATCH is the largest batch
# Methods are labels; any other (a client may send any token) is "other", to bound the series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
POOL_SAMPLE_S = 1.0  # under gunicorn, how often a worker writes its pool's use for the master
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Metrics:
    """The metric objects, made once per serving process (after a gunicorn fork)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.multiprocess = MULTIPROC_ENV in os.environ
        self.requests = Counter(
            "polls_http_requests",
            "Requests answered, by route name, method and status.",
            ["route", "method", "status"],
        )
        self.latency = Histogram(
            "polls_http_request_duration_seconds",
            "Time to answer a request, by route name (WebSocket upgrades not included).",
            ["route"],
            buckets=LATENCY_BUCKETS,
        )
        self.votes = Counter("polls_votes", "Ballots the vote writer settled, by outcome.", ["outcome"])
        self.batch_size = Histogram(
            "polls_vote_batch_size", "Ballots per vote batch (one statement each).", buckets=BATCH_BUCKETS
        )
        self.watchers = Gauge(
            "polls_live_watchers", "Live-results WebSockets open.", multiprocess_mode="livesum"
        )
        self.cache_hits = Counter("polls_cache_hits", "Page cache lookups answered from memory.", ["kind"])
        self.cache_misses = Counter("polls_cache_misses", "Page cache lookups that loaded.", ["kind"])
        self.pool_in_use = Gauge(
            "polls_db_pool_connections_in_use",
            "Database pool connections checked out (pool size minus free ones).",
            multiprocess_mode="livesum",
        )
        self.listener_reconnects = Counter(
            "polls_listener_reconnects", "Times the LISTEN connection was lost and opened again."
        )
        # `.labels()` takes a lock and builds a key each call: the hot paths look their
        # children up in these instead (every page view passes the cache).
        self._answered: dict[tuple[str | None, str, int], tuple[Any, Any]] = {}
        self._children: dict[tuple[Any, Any], Any] = {}

    def child(self, metric: Any, label: Any) -> Any:
        found = self._children.get((metric, label))
        if found is None:
            found = self._children[(metric, label)] = metric.labels(str(label))
        return found

    def answered(self, request: web.Request, status: int, started: float) -> None:
        method = request.method if request.method in METHODS else "other"
        key = (request.match_info.route.name, method, status)
        children = self._answered.get(key)
        if children is None:
            route = key[0] or "unmatched"
            # A WebSocket's handler returns when the socket closes: no latency to speak of.
            latency = None if status == 101 else self.latency.labels(route)
            children = self._answered[key] = (self.requests.labels(route, method, str(status)), latency)
        count, latency = children
        count.inc()
        if latency is not None:
            latency.observe(time.perf_counter() - started)


# The one per process: metrics are counted wherever the event happens (votes.py, cache.py...).
_metrics: _Metrics | None = None


def setup() -> None:
    """Start counting in this process (once; later calls change nothing)."""
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    """Count every answer and time it; outermost, so it sees the status the client gets."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and aiohttp's own answers come raised
        _metrics.answered(request, exc.status, started)
        raise
    _metrics.answered(request, response.status, started)
    return response


# -- hooks: one line where the event happens --------------------------------------------


def vote_batch(outcomes: Sequence[enum.Enum]) -> None:
    """A vote batch committed with these outcomes, one per ballot."""
    if _metrics is None:
        return
    _metrics.batch_size.observe(len(outcomes))
    for outcome in outcomes:
        _metrics.child(_metrics.votes, outcome.name.lower()).inc()


def watchers(change: int) -> None:
    """A live-results watcher joined (+1) or left (-1)."""
    if _metrics is not None:
        _metrics.watchers.inc(change)


def cache_hit(kind: Any) -> None:
    if _metrics is not None:
        _metrics.child(_metrics.cache_hits, kind).inc()


def cache_miss(kind: Any) -> None:
    if _metrics is not None:
        _metrics.child(_metrics.cache_misses, kind).inc()


def listener_reconnected() -> None:
    if _metrics is not None:
        _metrics.listener_reconnects.inc()


@contextlib.asynccontextmanager
async def pool_in_use(engine: Any) -> AsyncIterator[None]:
    """Report the pool's connections in use while it is open: read at scrape time in one
    process; under gunicorn the master cannot see the pool, so the worker writes it every
    POOL_SAMPLE_S."""
    metrics = _metrics
    if metrics is None:
        yield
        return
    if not metrics.multiprocess:
        metrics.pool_in_use.set_function(lambda: engine.size - engine.freesize)
        try:
            yield
        finally:
            metrics.pool_in_use.set_function(lambda: 0)
        return

    async def sample() -> None:
        while True:
            metrics.pool_in_use.set(engine.size - engine.freesize)
            await asyncio.sleep(POOL_SAMPLE_S)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.pool_in_use.set(0)


# -- serving /metrics on its own listener ------------------------------------------------


class MetricsUnavailable(RuntimeError):
    """The metrics listener could not start; the message says where and why."""


class _Exporter:
    def __init__(self, server: Any, folder: str | None) -> None:
        self.server = server
        self.folder = folder  # the multiprocess folder this process made, removed at the end

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


_exporter: _Exporter | None = None


def start_exporter(host: str, port: int, multiprocess: bool) -> None:
    """Serve /metrics on host:port from a thread of this process: its own metrics, or
    (`multiprocess`, a gunicorn master before it forks) those of every worker it will start."""
    global _exporter
    folder = _multiprocess_folder() if multiprocess else None
    try:
        from prometheus_client import REGISTRY, CollectorRegistry, start_http_server, values

        registry = REGISTRY
        if multiprocess:
            if not getattr(values.ValueClass, "_multiprocess", False):
                raise MetricsUnavailable(
                    "prometheus_client was imported before the multiprocess folder was set; "
                    "workers would each count alone"
                )
            registry = CollectorRegistry()
            registry.register(_WorkerFiles(os.environ[MULTIPROC_ENV]))
        try:
            server, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise MetricsUnavailable(
                f"cannot serve metrics on {host}:{port} (metrics.port): {exc.strerror}"
            ) from None
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    _exporter = _Exporter(server, folder)
    if multiprocess:
        log.info("metrics on http://%s:%s/metrics, added up from %s", host, port, os.environ[MULTIPROC_ENV])
    else:
        log.info("metrics on http://%s:%s/metrics", host, port)


class _WorkerFiles:
    """prometheus-client's MultiProcessCollector, except that a file a worker is creating
    at that instant (empty until it is sized) is left for the next scrape, which that
    collector fails on: a worker booting would cost a scrape."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        for path in glob.glob(os.path.join(self.folder, "*.db")):
            with contextlib.suppress(FileNotFoundError):  # a dead worker's live gauges go
                if os.path.getsize(path):
                    files.append(path)
        return MultiProcessCollector.merge(files, accumulate=True)


def stop_exporter() -> None:
    global _exporter
    if _exporter is not None:
        _exporter.close()
        _exporter = None


def process_dead(pid: int) -> None:
    """A gunicorn worker exited: its live gauges (watchers, pool) no longer count."""
    from prometheus_client import multiprocess as prometheus_multiprocess

    prometheus_multiprocess.mark_process_dead(pid)


def _multiprocess_folder() -> str | None:
    """Point PROMETHEUS_MULTIPROC_DIR (for the workers about to fork) at an empty folder:
    a new private one, or the operator's own emptied of a previous run's files. Returns
    the folder when this process made it (and so removes it)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        return None
    folder = tempfile.mkdtemp(prefix="polls-metrics-")  # mode 0700: only this user
    os.environ[MULTIPROC_ENV] = folder
    return folder
