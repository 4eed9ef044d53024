"""`python -m aiohttpdemo_polls` as production runs it: workers, access log, SIGTERM."""

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
import types

import aiohttp
import psutil
import pytest
import yaml
from aiohttp import web

from aiohttpdemo_polls import serve, settings
from aiohttpdemo_polls.store.changes import Listener

# Seconds from SIGTERM to exit: in-flight requests take milliseconds; the margin is for a busy CI.
PROMPTLY = 5.0
COMBINED = re.compile(r'^\S+ - - \[[^]]+\] "[A-Z]+ \S+ HTTP/1\.[01]" \d{3} \d+ "[^"]*" "[^"]*"$')


async def vote_storm(app, question: dict, total: int, clients: int, sigterm_after: int) -> dict:
    """POST up to `total` cookie-less votes from `clients` concurrent clients; SIGTERM mid-way.

    Returns the statuses answered, how many 302s arrived after the signal, the app's exit
    status and how long it took to exit after the signal.
    """
    statuses: dict[int, int] = {}
    answered_after_signal = 0
    exited: asyncio.Task | None = None
    remaining = total
    url = f"{app.url}/poll/{question['id']}/vote"

    async def wait_exit(signalled_at: float) -> tuple[int, float]:
        status = await asyncio.to_thread(app.wait_exit, serve.SHUTDOWN_TIMEOUT + 10)
        return status, time.monotonic() - signalled_at

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal remaining, answered_after_signal, exited
        while remaining > 0:
            remaining -= 1
            choice = question["choices"][(remaining + n) % len(question["choices"])]
            try:
                async with session.post(url, data={"choice": str(choice)}, allow_redirects=False) as response:
                    await response.read()
            except (TimeoutError, aiohttp.ClientConnectionError):
                if exited is not None:
                    return  # not answered: the app is going away, as it should
                raise
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if exited is not None and response.status == 302:
                answered_after_signal += 1
            if exited is None and statuses.get(302, 0) >= sigterm_after:
                app.process.send_signal(signal.SIGTERM)
                exited = asyncio.create_task(wait_exit(time.monotonic()))

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout) as session:
        await asyncio.gather(*(client(session, n) for n in range(clients)))
    assert exited is not None, f"the storm ended before the signal: {statuses}"
    exit_status, exit_seconds = await exited
    return {
        "statuses": statuses,
        "answered_after_signal": answered_after_signal,
        "exit_status": exit_status,
        "exit_seconds": exit_seconds,
    }


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_in_a_vote_storm_counts_every_302_once_and_exits_0(
    app_process, make_question, votes_of, sync_engine, vote_rows_match_counters, workers
):
    question = make_question(choices=("Red", "Green", "Blue"))
    app = app_process("--workers", workers)
    app.wait_serving(int(workers))

    storm = await vote_storm(app, question, total=3000, clients=48, sigterm_after=1000)

    assert storm["exit_status"] == 0, app.log()
    assert storm["exit_seconds"] < PROMPTLY, app.log()
    assert set(storm["statuses"]) == {302}, f"no vote refused or failed: {storm['statuses']}"
    assert storm["answered_after_signal"] > 0, "requests in flight at SIGTERM were finished"
    answered = storm["statuses"][302]
    assert sum(votes_of(question["id"]).values()) == answered, "every 302 counted, none twice"
    assert vote_rows_match_counters()
    assert "Traceback" not in app.log()


@pytest.mark.slow
async def test_two_workers_share_the_port_and_both_serve_and_count_votes(
    app_process, make_question, votes_of, vote_rows_match_counters
):
    question = make_question()
    app = app_process("--workers", "2")
    app.wait_serving(2)
    workers = [psutil.Process(pid) for pid in app.serving_pids()]
    assert len(workers) == 2 and all(w.ppid() == app.process.pid for w in workers)
    port = int(app.url.rsplit(":", 1)[1])

    # Rounds of sixteen fresh connections, which the workers take from the shared socket,
    # until each worker has held some (a worker still starting takes none at first).
    statuses: list[int] = []
    serving: set[int] = set()
    for _ in range(50):
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:

            async def vote(n: int) -> int:
                choice = question["choices"][n % len(question["choices"])]
                url = f"{app.url}/poll/{question['id']}/vote"
                async with session.post(url, data={"choice": str(choice)}, allow_redirects=False) as response:
                    return response.status

            statuses += await asyncio.gather(*(vote(n) for n in range(32)))
            serving |= {
                worker.pid
                for worker in workers
                for conn in worker.net_connections(kind="tcp")
                if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port
            }
        if serving == {w.pid for w in workers}:
            break
    assert serving == {w.pid for w in workers}, "both workers hold client connections"
    assert statuses == [302] * len(statuses)
    assert sum(votes_of(question["id"]).values()) == len(statuses)
    assert vote_rows_match_counters()

    # A worker that dies is replaced; the site keeps serving meanwhile.
    workers[0].kill()
    app.wait_serving(3)
    async with aiohttp.ClientSession() as session, session.get(f"{app.url}/healthz") as response:
        assert response.status == 200
    assert f"Worker (pid:{workers[0].pid}) was sent SIGKILL" in app.log()

    app.process.send_signal(signal.SIGTERM)
    assert app.wait_exit(serve.SHUTDOWN_TIMEOUT + 10) == 0
    posts = [line for line in app.access_lines() if '"POST ' in line]
    assert len(posts) == len(statuses) and all(COMBINED.match(line) for line in app.access_lines())


async def test_workers_serve_with_the_settings_file_given_with_c(app_process, tmp_path, make_question):
    question = make_question()
    small = tmp_path / "small_bodies.yaml"
    test_config = settings.PROJECT_ROOT / "config" / "polls_test.yaml"
    small.write_text(
        yaml.safe_dump({**yaml.safe_load(test_config.read_text(encoding="utf-8")), "max_body_size": 1024})
    )
    app = app_process("-c", str(small), "--workers", "2")
    app.wait_serving(2)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        url = f"{app.url}/poll/{question['id']}/vote"
        data = {"choice": str(question["choices"][0]), "padding": "x" * 2048}
        async with session.post(url, data=data, allow_redirects=False) as response:
            assert response.status == 413, "the workers' app has the file's max_body_size"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", str(serve.MAX_WORKERS + 1)])
def test_bad_workers_value_is_one_line_and_status_2(value):
    result = subprocess.run(
        [sys.executable, "-m", "aiohttpdemo_polls", "--workers", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--workers" in result.stderr, result.stderr


def test_workers_that_cannot_start_stop_the_server_with_a_failure_status(app_process, database_url):
    missing = database_url.replace("/aiohttpdemo_polls_test?", "/no_such_database?")
    assert missing != database_url
    app = app_process("--workers", "2", database_url=missing)
    assert app.wait_exit(30) != 0
    assert "Worker failed to boot" in app.log() and "no_such_database" in app.log()


def test_unusable_database_stops_one_process_with_status_1_and_a_one_line_reason(app_process, database_url):
    missing = database_url.replace("/aiohttpdemo_polls_test?", "/no_such_database?")
    app = app_process(database_url=missing)
    assert app.wait_exit(30) == 1
    assert "cannot use the database:" in app.log() and "no_such_database" in app.log()
    assert "Traceback" not in app.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_taken_is_a_failure_status_and_says_so(app_process, unused_tcp_port, workers):
    with socket.create_server(("127.0.0.1", unused_tcp_port)):  # another program listens there
        app = app_process("--workers", workers, port=unused_tcp_port)
        assert app.wait_exit(60) != 0
    assert f"cannot listen on 127.0.0.1:{unused_tcp_port}: " in app.log()
    assert "address already in use" in app.log().lower()


async def test_a_second_copy_on_default_settings_serves_beside_the_first(app_process, make_question):
    # Only the site's port differs, as in `POLLS_PORT=8081 python -m aiohttpdemo_polls`: nothing
    # else either copy opens (metrics included) may be a fixed port the other holds.
    make_question("Two copies?")
    first = app_process(config=None)
    first.wait_serving()
    second = app_process(config=None)
    second.wait_serving()
    assert first.process.poll() is None, first.log()
    for app in (first, second):
        async with aiohttp.ClientSession() as session, session.get(f"{app.url}/") as response:
            assert response.status == 200
            assert "Two copies?" in await response.text()
        assert "Traceback" not in app.log()


def test_production_sample_config_is_valid_and_production_like():
    config = settings.load(settings.PROJECT_ROOT / "config" / "production.yaml", {})
    assert config["debug"] is False and config["https"] is True
    assert config["log_level"] == "INFO" and config["host"] == "127.0.0.1"
    assert config["access_log"] is False, "behind nginx, which writes its own access log"


def test_nginx_sample_limits_bodies_like_the_app():
    nginx = (settings.PROJECT_ROOT / "config" / "nginx.conf").read_text()
    config = settings.load(settings.PROJECT_ROOT / "config" / "production.yaml", {})
    assert config["max_body_size"] == 1024 * 1024 and "client_max_body_size 1m;" in nginx
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx and "location /static/" in nginx


async def test_shutdown_answers_connections_accepted_just_before_it(unused_tcp_port):
    # asyncio accepts a burst of connections in one turn of its loop and gives each to its
    # server in the next; a shutdown that begins between the two must not close the server
    # under them (asyncio would drop each one with a reset, a lost vote behind nginx).
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = serve.DrainingRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    loop = asyncio.get_running_loop()
    clients: list[socket.socket] = []
    stopping: list[asyncio.Future] = []

    def connect_then_stop() -> None:
        for _ in range(8):  # connected and sent in the kernel; asyncio accepts them next turn
            client = socket.create_connection(("127.0.0.1", unused_tcp_port), timeout=5)
            client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            clients.append(client)
        # Shutdown's first step: the turn after asyncio has accepted them, before they join.
        loop.call_soon(lambda: stopping.append(asyncio.ensure_future(runner.cleanup())))

    loop.call_soon(connect_then_stop)
    while not stopping:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(stopping[0], timeout=serve.CLEANUP_TIMEOUT)

    def answer(client: socket.socket) -> bytes:
        with client:
            try:
                return client.recv(4096)
            except ConnectionResetError:
                return b"reset"

    answers = await asyncio.to_thread(lambda: [answer(client) for client in clients])
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * len(clients)
    # Said, not only done: a proxy that is not told sends its next request as the app closes.
    assert all(b"\r\nConnection: close\r\n" in a for a in answers), answers


async def test_shutdown_does_not_wait_for_open_websockets_nor_remember_closed_ones(unused_tcp_port):
    # The proxy lets go of kept-alive connections; a WebSocket stays open until cleanup sends 1001.
    sockets: set[web.WebSocketResponse] = set()

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        async for _ in ws:
            pass
        return ws

    async def going_away(app: web.Application) -> None:
        for ws in set(sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.on_shutdown.append(going_away)
    runner = serve.DrainingRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    url = f"http://127.0.0.1:{unused_tcp_port}/ws"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as gone:
            pass  # this one's handler has ended: it must not count as a WebSocket still open
        assert gone.closed
        async with session.ws_connect(url):
            deadline = time.monotonic() + 5
            while len(runner.websockets) != 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(runner.websockets) == 1  # the open one, not the one that ended
            started = time.monotonic()
            await asyncio.wait_for(runner.cleanup(), timeout=serve.CLEANUP_TIMEOUT)
            assert time.monotonic() - started < serve.DRAIN_TIMEOUT


async def test_a_stuck_shutdown_names_the_coroutines_it_waits_in():
    async def waits_for_ever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(waits_for_ever(), name="stuck-task")
    await asyncio.sleep(0)
    try:
        report = serve._tasks()
    finally:
        task.cancel()
    line = next(line for line in report.splitlines() if "stuck-task" in line)
    assert "waits_for_ever" in line and "Event.wait" in line


async def test_listener_stops_when_cancelled_just_as_a_notice_arrives():
    # Shutdown cancels the listener while notices pour in (a vote storm). On Python 3.11
    # asyncio.wait_for returns the notice instead of raising CancelledError when both
    # happen in one turn of the loop, and the listener would drain for ever.
    class Connection:
        notifies: asyncio.Queue = asyncio.Queue()

    listener = Listener("postgresql://unused", lambda ids: None, lambda: None, lambda: None)
    draining = asyncio.create_task(listener._drain(Connection()))
    await asyncio.sleep(0.01)  # now waiting for a notice
    Connection.notifies.put_nowait(types.SimpleNamespace(payload="1"))
    draining.cancel()
    done, _ = await asyncio.wait([draining], timeout=2)
    if not done:
        draining.cancel()  # a second cancel ends it, so the test itself cannot hang
        await asyncio.wait([draining], timeout=2)
    assert done and draining.cancelled(), "the listener swallowed its cancellation"
