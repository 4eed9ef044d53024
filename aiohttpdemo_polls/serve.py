"""Serving: one process, or a supervisor of N worker processes sharing the port.

Each worker is a whole app of its own (connection pool, caches, live-results listener)
bound to the same port with SO_REUSEPORT, so the kernel spreads connections over them.
The supervisor only starts, watches and stops workers; it never touches the database.

Shutdown (SIGTERM or SIGINT, in either mode): stop accepting, let requests in flight
finish (votes included) for up to SHUTDOWN_TIMEOUT, close the pool, exit 0. Signals
that arrive while shutting down are ignored, so a process manager that signals the
supervisor and the workers alike (systemd's default) cannot cut a vote short.
"""

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

import psycopg2
from aiohttp import web

from . import logs
from .main import init_app

log = logging.getLogger(__name__)

# How long requests in flight may take to finish after SIGTERM before aiohttp cancels
# them. A vote or a page takes milliseconds; this leaves room for a slow database while
# staying well inside systemd's (90 s) and Kubernetes' (30 s) grace periods.
SHUTDOWN_TIMEOUT = 10.0
# Then closing the pool, the listener and the vote writer takes milliseconds. Should it
# not end (a task that never finishes), the process says what it was waiting for and
# exits 1 rather than hang until a process manager kills it without a word.
CLEANUP_TIMEOUT = SHUTDOWN_TIMEOUT + 10.0
MAX_WORKERS = 64


def run(config: dict[str, Any], *, worker: bool = False, ready: Callable[[], None] | None = None) -> int:
    """Serve `config`'s app in this process until SIGTERM/SIGINT; the exit status.

    A `worker` shares the port with its siblings and stops when its supervisor is gone.
    """
    try:
        with asyncio.Runner(loop_factory=_loop_factory(config)) as runner:
            runner.run(_serve(config, worker, ready))
    except psycopg2.OperationalError as exc:
        log.error("cannot use the database: %s (did you run init_db.py?)", logs.first_line(exc))
        return 1
    except OSError as exc:
        # Most often the port is taken (another copy of the app is running).
        log.error("cannot listen on %s:%s: %s", config["host"], config["port"], exc.strerror)
        return 1
    return 0


def _loop_factory(config: dict[str, Any]) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the config asks for it (`uvloop: true`), else asyncio's."""
    if not config["uvloop"]:
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop: true, but uvloop is not installed (pip install -e '.[uvloop]'); using asyncio")
        return None
    return uvloop.new_event_loop


async def _serve(config: dict[str, Any], worker: bool, ready: Callable[[], None] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # a second signal changes nothing
    if worker:
        orphan_watch = asyncio.create_task(_stop_when_orphaned(stop))
    runner = web.AppRunner(
        init_app(config=config),
        handle_signals=False,
        access_log=logging.getLogger("aiohttp.access") if config["access_log"] else None,
        access_log_class=logs.CombinedAccessLogger,
        access_log_format=logs.ACCESS_LOG_FORMAT,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        # aiohttp 3.14's default, stated because votes rely on it: a client that hangs up
        # does not cancel its handler, so a vote is committed and counted, or not begun.
        handler_cancellation=False,
    )
    await runner.setup()  # cleanup_ctx: opens the pool (an unusable database stops here)
    try:
        # backlog: 128 (the default) overflows when hundreds of clients connect at once,
        # and each overflowed connection waits a second for its SYN to be retried.
        site = web.TCPSite(runner, config["host"], config["port"], reuse_port=worker, backlog=1024)
        await site.start()
        log.info("serving on http://%s:%s", config["host"], config["port"])
        if ready is not None:
            ready()
        await stop.wait()
        log.info("shutting down: finishing requests in flight")
    finally:
        if worker:
            orphan_watch.cancel()
        await _cleanup(runner)
        logs.flush_access_lines()  # the last requests' lines, due on a loop turn that may not come
    log.info("stopped")


async def _cleanup(runner: web.AppRunner) -> None:
    """Close the listening socket, then idle keep-alive connections, wait for handlers in
    flight (SHUTDOWN_TIMEOUT), then run cleanup_ctx (vote writer, listener, pool)."""
    try:
        async with asyncio.timeout(CLEANUP_TIMEOUT):
            await runner.cleanup()
    except TimeoutError:
        log.error("shutdown not done after %.0f s; exiting. Still running:\n%s", CLEANUP_TIMEOUT, _tasks())
        logging.shutdown()
        os._exit(1)  # asyncio.run() would wait for the same stuck tasks


def _tasks() -> str:
    """Each pending task with the chain of coroutines it is suspended in."""
    lines = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        chain, awaited = [], task.get_coro()
        while awaited is not None and len(chain) < 20:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        lines.append(f"  {task.get_name()}: " + " -> ".join(chain or [repr(task)]))
    return "\n".join(lines)


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose supervisor was killed (SIGKILL, OOM) shuts down instead of lingering."""
    supervisor = os.getppid()
    while os.getppid() == supervisor:
        await asyncio.sleep(1)
    log.warning("the supervisor (pid %s) is gone; shutting down", supervisor)
    stop.set()


def _worker(config: dict[str, Any], ready: Any) -> None:
    """A worker process's entry point (spawned: a fresh interpreter, no inherited loop)."""
    logs.configure(config["log_level"])
    sys.exit(run(config, worker=True, ready=ready.set))


class Supervisor:
    """Starts `count` workers, forwards SIGTERM/SIGINT to them, replaces any that dies.

    A worker that dies after it started serving (killed, out of memory) is logged and
    replaced, so the site keeps its capacity. One that dies before it could serve (the
    database is unusable, the port is taken) would only die again: then every worker is
    stopped and the supervisor exits 1.
    """

    def __init__(self, config: dict[str, Any], count: int) -> None:
        self.config = config
        self.count = count
        self.context = multiprocessing.get_context("spawn")
        self.workers: dict[int, tuple[Any, Any]] = {}  # sentinel -> (process, ready event)
        self.stopping = False

    def run(self) -> int:
        if not _port_is_free(self.config["host"], self.config["port"]):
            return 1
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        for _ in range(self.count):
            self._start_worker()
        status = 0
        while self.workers:
            for sentinel in wait(list(self.workers)):
                process, ready = self.workers.pop(sentinel)
                process.join()
                if self.stopping:
                    status = status or (process.exitcode != 0)
                elif ready.is_set():
                    log.warning(
                        "worker %s exited with status %s; starting another", process.pid, process.exitcode
                    )
                    self._start_worker()
                else:
                    log.error(
                        "worker %s could not start (status %s); stopping", process.pid, process.exitcode
                    )
                    self._stop()
                    status = 1
        log.info("all workers stopped")
        return int(status)

    def _start_worker(self) -> None:
        ready = self.context.Event()
        process = self.context.Process(target=_worker, args=(self.config, ready), name="polls-worker")
        process.start()
        self.workers[process.sentinel] = (process, ready)

    def _stop(self, signum: int | None = None, frame: object = None) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping %d workers", len(self.workers))
        for process, _ in self.workers.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker shuts down gracefully


def _port_is_free(host: str, port: int) -> bool:
    """False (and an error logged) when another program listens there already.

    Workers bind with SO_REUSEPORT, which would silently share the port with another
    copy of the app started the same way; a plain bind first refuses that.
    """
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc.strerror)
        return False
    return True


def supervise(config: dict[str, Any], count: int) -> int:
    """Serve with `count` worker processes until SIGTERM/SIGINT; the exit status."""
    return Supervisor(config, count).run()
