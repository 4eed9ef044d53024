"""Prometheus metrics of this process, or of all a host's gunicorn workers added up.
prometheus-client decides at import whether values live in memory or in the files a master
adds up, so it is imported only in `setup()` and `start_exporter()`, once that is settled.
"""

import asyncio
import bisect
import contextlib
import enum
import glob
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

# A page served from the cache takes about a millisecond; a second is far past any answer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # votes.MAX_BATCH is the largest batch
# Methods are labels; any other (a client may send any token) is "other", to bound the series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# How often a process writes what it counted into its metrics (and, under gunicorn, its pool's use).
FLUSH_S = 1.0
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
        self.watchers_dropped = Counter(
            "polls_live_watchers_dropped",
            "Slow live-results watchers dropped, by reason: backlog (too many bytes waiting) or "
            "no_pong (a ping left unanswered).",
            ["reason"],
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
        # Counting on the hot paths is a dict increment: the metric values (under gunicorn, a
        # locked write to a shared file each) are written once per FLUSH_S by `flush`.
        self._counts: dict[tuple[Any, Any], int] = {}  # (metric, label) -> count
        self._answered: dict[tuple[str | None, str, int], int] = {}  # (route, method, status) -> count
        self._timed: dict[str | None, list[float]] = {}  # route -> count per latency bucket, then the sum
        self._children: dict[tuple[Any, Any], Any] = {}
        self.samplers: list[Callable[[], None]] = []  # also called at each flush

    def child(self, metric: Any, *labels: Any) -> Any:
        """The metric's child for these label values (`.labels()` takes a lock and builds a key)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*map(str, labels))
        return found

    def count(self, metric: Any, label: Any) -> None:
        key = (metric, label)
        self._counts[key] = self._counts.get(key, 0) + 1

    def answered(self, method: str, route: str | None, status: int, started: float) -> None:
        method = method if method in METHODS else "other"
        key = (route, method, status)
        self._answered[key] = self._answered.get(key, 0) + 1
        if status == 101:  # a WebSocket's handler returns when the socket closes: no latency to speak of
            return
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = [0] * (len(LATENCY_BUCKETS) + 2)
        _tally(timed, time.perf_counter() - started)

    def flush(self) -> None:
        """Write what was counted since the last flush into the metric values."""
        counts, self._counts = self._counts, {}
        for (metric, label), n in counts.items():
            self.child(metric, label).inc(n)
        answered, self._answered = self._answered, {}
        for (route, method, status), n in answered.items():
            self.child(self.requests, route or "unmatched", method, status).inc(n)
        timed, self._timed = self._timed, {}
        for route, buckets in timed.items():
            _observed(self.child(self.latency, route or "unmatched"), buckets)
        for sample in self.samplers:
            sample()


def _tally(buckets: list[float], seconds: float) -> None:
    """Count one latency in the first bucket whose bound it does not pass (`le`), and in the sum."""
    buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
    buckets[-1] += seconds


def _observed(histogram: Any, buckets: list[float]) -> None:
    """Add observations counted per bucket (the sum last), as that many `observe` calls would:
    prometheus-client has no call for many at once, so this adds to the values `observe` does."""
    *counts, total = buckets
    histogram._sum.inc(total)
    for value, n in zip(histogram._buckets, counts, strict=True):
        if n:
            value.inc(n)


# The one per process: metrics are counted wherever the event happens (store/votes.py, web/cache.py...).
_metrics: _Metrics | None = None


def setup() -> None:
    """Start counting in this process (once; later calls change nothing)."""
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()


def answered(method: str, route: str | None, status: int, started: float) -> None:
    """One answer given, with its status, and its latency since `started` (perf_counter)."""
    _metrics.answered(method, route, status, started)


# -- hooks: one line where the event happens --------------------------------------------


def vote_batch(outcomes: Sequence[enum.Enum]) -> None:
    """A vote batch committed with these outcomes, one per ballot."""
    if _metrics is None:
        return
    _metrics.batch_size.observe(len(outcomes))
    for outcome in outcomes:
        _metrics.count(_metrics.votes, outcome.name.lower())


def watchers(change: int) -> None:
    """A live-results watcher joined (+1) or left (-1)."""
    if _metrics is not None:
        _metrics.watchers.inc(change)


def watcher_dropped(reason: str) -> None:
    """A slow live-results watcher was dropped ("backlog" or "no_pong")."""
    if _metrics is not None:
        _metrics.count(_metrics.watchers_dropped, reason)


def cache_hit(kind: Any) -> None:
    if _metrics is not None:
        _metrics.count(_metrics.cache_hits, kind)


def cache_miss(kind: Any) -> None:
    if _metrics is not None:
        _metrics.count(_metrics.cache_misses, kind)


def listener_reconnected() -> None:
    if _metrics is not None:
        _metrics.listener_reconnects.inc()


@contextlib.asynccontextmanager
async def flushing() -> AsyncIterator[None]:
    """Write what this process counted every FLUSH_S while the app runs, and once more as it stops."""
    metrics = _metrics

    async def every_interval() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            metrics.flush()

    task = asyncio.create_task(every_interval())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    metrics.flush()


@contextlib.asynccontextmanager
async def pool_in_use(engine: Any) -> AsyncIterator[None]:
    """Report the pool's connections in use while it is open: read at scrape time in one
    process; under gunicorn the master cannot see the pool, so the worker writes it at each flush."""
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

    def sample() -> None:
        metrics.pool_in_use.set(engine.size - engine.freesize)

    sample()
    metrics.samplers.append(sample)
    try:
        yield
    finally:
        metrics.samplers.remove(sample)
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
