"""Serving: the app in this process, or N processes under gunicorn sharing the port. On
SIGTERM, in either mode: stop listening, close kept-alive connections as the proxy lets go
of them, let requests in flight finish (votes included), then exit 0.
"""

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psycopg2
from aiohttp import web
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from . import logs, metrics
from .app import create_app, init_app
from .web import aiohttp_private
from .web.config import config_key

log = logging.getLogger(__name__)

# How long requests in flight may take to finish after SIGTERM before aiohttp cancels
# them. A vote or a page takes milliseconds; this leaves room for a slow database while
# staying well inside systemd's (90 s) and Kubernetes' (30 s) grace periods.
SHUTDOWN_TIMEOUT = 10  # whole seconds: gunicorn takes no fraction
# Then closing the pool, the listener and the vote writer takes milliseconds. Should it
# not end (a task that never finishes), the process says what it was waiting for and
# exits 1 rather than hang until a process manager kills it without a word.
CLEANUP_TIMEOUT = SHUTDOWN_TIMEOUT + 10
MAX_WORKERS = 64
# nginx closes an idle kept-alive connection to the app after its upstream `keepalive_timeout`
# (2 s in config/nginx.conf). The app must never be the one to close an idle connection: nginx
# may be sending a request on it at that moment, and it never passes such a POST (a vote) on
# to another host. So the app keeps idle connections longer, and on shutdown waits a little
# longer than nginx's timeout for them to be gone before aiohttp closes what is left.
KEEPALIVE_TIMEOUT = 75.0  # aiohttp's default; gunicorn's worker would use its own 2 s
DRAIN_TIMEOUT = 3.0


def run(config: dict[str, Any]) -> int:
    """Serve `config`'s app in this process until SIGTERM/SIGINT; the exit status."""
    try:
        with asyncio.Runner(loop_factory=_loop_factory(config)) as runner:
            runner.run(_serve(config))
    except psycopg2.OperationalError as exc:
        log.error("cannot use the database: %s (did you run init_db.py?)", logs.first_line(exc))
        return 1
    except metrics.MetricsUnavailable as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        # Most often the port is taken (another copy of the app is running).
        log.error("cannot listen on %s:%s: %s", config["host"], config["port"], exc.strerror)
        return 1
    return 0


def run_gunicorn(config: dict[str, Any], workers: int) -> int:
    """Serve with gunicorn's master and `workers` processes; gunicorn ends this process.

    Its exit status: 0 after SIGTERM, non-zero when the port is taken or a worker could not boot.
    """
    # create_app, in each worker, reads the settings file named by POLLS_CONFIG.
    path = config["config_path"]  # None: the built-in settings, which workers load too
    options = {"workers": workers, "raw_env": [f"POLLS_CONFIG={path}"] if path else []}
    _Gunicorn({**gunicorn_settings(config), **options}).run()
    return 0  # not reached: gunicorn's master exits the process


def gunicorn_settings(config: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's settings for `config`'s app, shared by `--workers N` and config/gunicorn.conf.py."""
    return {
        **_metrics_hooks(config["metrics"]),
        "bind": [f"{config['host']}:{config['port']}"],
        "worker_class": "aiohttp.GunicornUVLoopWebWorker" if _uvloop(config) else "aiohttp.GunicornWebWorker",
        "loglevel": config["log_level"].lower(),
        # One combined line per request on stdout, written by aiohttp's access logger.
        "accesslog": "-" if config["access_log"] else None,
        "access_log_format": logs.ACCESS_LOG_FORMAT,
        # aiohttp's worker lets requests in flight finish for 95% of this, then the master kills.
        "graceful_timeout": SHUTDOWN_TIMEOUT,
        # Each worker listens on a socket of its own (SO_REUSEPORT), so the kernel spreads
        # connections over them; on one shared socket the first worker to wake takes a whole
        # burst of kept-alive connections and leaves the others idle.
        "reuse_port": True,
        "logger_class": ListeningLogger,
        "on_starting": _Starting(config["metrics"]["host"], config["metrics"]["port"]),
        # gunicorn >= 25.1 opens a control socket in ~/.gunicorn shared by every gunicorn on
        # the machine; the app does not use it.
        "control_socket_disable": True,
    }


def _metrics_hooks(options: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's hooks that keep the metrics of workers that come and go (_Starting serves them)."""
    if not options["port"]:
        return {}
    return {"child_exit": _worker_exited, "on_exit": _stop_metrics}


@dataclasses.dataclass(frozen=True)
class _Starting:
    """on_starting, in the master before any worker forks: refuse a taken port, then serve the
    workers' metrics, added up, from a folder they write to. A value (not a closure), so
    gunicorn.conf.py's settings equal `--workers N`'s."""

    metrics_host: str
    metrics_port: int

    def __call__(self, arbiter: Any) -> None:
        for address in arbiter.cfg.address:
            _refuse_taken(address)
        if self.metrics_port:
            try:
                metrics.start_exporter(self.metrics_host, self.metrics_port, multiprocess=True)
            except metrics.MetricsUnavailable as exc:
                raise RuntimeError(str(exc)) from None  # gunicorn prints "Error: ..." and exits 1


def _refuse_taken(address: Any) -> None:
    """Workers bind with SO_REUSEPORT, which would share the port without a word with another
    copy of the app: a plain bind must succeed first. (A str address is a Unix socket.)

    Bound, never listening: a proxy's connection to it would be queued, then reset."""
    if isinstance(address, str):
        return
    host, port = address[:2]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # old connections' TIME_WAIT
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


class ListeningLogger(GunicornLogger):
    """gunicorn's logger, naming the address its master would leave blank.

    With SO_REUSEPORT the master holds no socket (each worker binds its own), so gunicorn's
    `Listening at: %s (%s)` line has no listener to name: it gets the configured addresses."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg.startswith("Listening at:") and args and not args[0]:
            args = (",".join(_url(address) for address in self.cfg.address), *args[1:])
        super().info(msg, *args, **kwargs)


def _url(address: Any) -> str:
    """An address of gunicorn's `bind`, written as gunicorn writes a listener's."""
    if isinstance(address, str):
        return f"unix:{address}"
    host, port = address[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _worker_exited(arbiter: Any, worker: Any) -> None:
    metrics.process_dead(worker.pid)


def _stop_metrics(arbiter: Any) -> None:
    metrics.stop_exporter()


class _Gunicorn(BaseApplication):
    """gunicorn run from this process with settings given here, not from its command line."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[[], Any]:
        return create_runner


async def create_runner() -> web.AppRunner:
    """Each gunicorn worker's app, in a runner that drains as `python -m` does (the worker
    uses a runner it is given as it is)."""
    app = await create_app()
    return _runner(app, app[config_key])


def _runner(app: web.Application, config: dict[str, Any]) -> web.AppRunner:
    return DrainingRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("aiohttp.access") if config["access_log"] else None,
        access_log_format=logs.ACCESS_LOG_FORMAT,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        # aiohttp 3.14's default, stated because votes rely on it: a client that hangs up
        # does not cancel its handler, so a vote is committed and counted, or not begun.
        handler_cancellation=False,
    )


class DrainingRunner(web.AppRunner):
    """An AppRunner whose shutdown loses no request a proxy sends on a kept-alive connection.

    Not listening any more, a refused connection is one nginx safely passes to another host."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.draining = False
        self.websockets: set[web.RequestHandler] = set()  # connections upgraded to a WebSocket, open
        app.on_response_prepare.append(self._close_when_draining)

    async def _close_when_draining(self, request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            # Its handler runs as long as the socket is open; then aiohttp closes the connection.
            connection = request.protocol
            self.websockets.add(connection)
            request.task.add_done_callback(lambda _: self.websockets.discard(connection))
        elif self.draining:
            response.force_close()  # the app closes the connection after this response
            # aiohttp has chosen the Connection header before this hook: say it, or nginx puts
            # the connection back in its pool and sends the next vote on it as it closes.
            response.headers["Connection"] = "close"

    async def cleanup(self) -> None:
        """Stop listening, wait for the proxy to close its connections, then aiohttp's cleanup."""
        self.draining = True
        loop = asyncio.get_running_loop()
        servers = [aiohttp_private.listening_server(site) for site in self.sites]
        for server in servers:
            for sock in server.sockets if server is not None else ():
                loop.remove_reader(sock.fileno())  # asyncio accepts no more by itself
        # asyncio hands a connection it accepted to its server one turn of the loop later, and
        # a closed server drops it (a reset): let those it has accepted already join first.
        await asyncio.sleep(0)
        taken = [conn for server in servers for conn in _stop_listening(server)]
        for site in list(self.sites):
            await site.stop()
        for conn in taken:
            await loop.connect_accepted_socket(self.server, conn)
        # Until the proxy has let go of every connection: a busy one answers with
        # `Connection: close` only if its response began after the signal, so it may go back
        # to the proxy's idle pool like any idle one, and aiohttp's cleanup would close it
        # as the proxy sends its next request. Wait first: a connection just accepted is not
        # among the server's connections until its first turn.
        deadline = time.monotonic() + DRAIN_TIMEOUT
        await asyncio.sleep(0.05)
        while self.server is not None and self._held(self.server) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await super().cleanup()

    def _held(self, server: web.Server) -> int:
        """Connections still open other than WebSockets (those close with 1001 in cleanup)."""
        return sum(conn not in self.websockets for conn in server.connections)


def _stop_listening(server: asyncio.Server | None) -> list[socket.socket]:
    """Close the server's listening sockets, taking first the connections queued on them.

    Closing resets every connection the kernel has queued but not handed over, and nginx
    passes no POST on after a reset; taking them and closing in one step leaves none behind.
    """
    if server is None or not server.sockets:
        return []
    taken = []
    for listening in server.sockets:
        with socket.socket(fileno=os.dup(listening.fileno())) as sock:
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                taken.append(conn)
    server.close()
    return taken


def _uvloop(config: dict[str, Any]) -> ModuleType | None:
    """The uvloop module when the config asks for it (`uvloop: true`) and it is installed."""
    if not config["uvloop"]:
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop: true, but uvloop is not installed (pip install -e '.[uvloop]'); using asyncio")
        return None
    return uvloop


def _loop_factory(config: dict[str, Any]) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the config asks for it, else asyncio's."""
    uvloop = _uvloop(config)
    return uvloop.new_event_loop if uvloop else None


async def _serve(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # a second signal changes nothing
    runner = _runner(init_app(config=config), config)
    await runner.setup()  # cleanup_ctx: opens the pool (an unusable database stops here)
    try:
        if config["metrics"]["port"]:
            metrics.start_exporter(config["metrics"]["host"], config["metrics"]["port"], multiprocess=False)
        # backlog: 128 (the default) overflows when hundreds of clients connect at once,
        # and each overflowed connection waits a second for its SYN to be retried.
        site = web.TCPSite(runner, config["host"], config["port"], backlog=1024)
        await site.start()
        log.info("serving on http://%s:%s", config["host"], config["port"])
        await stop.wait()
        log.info("shutting down: finishing requests in flight")
    finally:
        await _cleanup(runner)
        metrics.stop_exporter()
    log.info("stopped")


async def _cleanup(runner: web.AppRunner) -> None:
    """Close the listening socket, drain and then close keep-alive connections, wait for
    handlers in flight (SHUTDOWN_TIMEOUT), then run cleanup_ctx (vote writer, listener, pool)."""
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
