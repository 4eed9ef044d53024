"""The deployment guide's gunicorn command (aiohttp's worker class) serves pages and counts votes."""

import asyncio
import os
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from aiohttpdemo_polls import serve, settings

COMMAND = (
    "gunicorn -c config/gunicorn.conf.py --bind 127.0.0.1:8080 --workers 2"
    " aiohttpdemo_polls.serve:create_runner"
)
COMBINED = re.compile(r'^\S+ - - \[[^]]+\] "[A-Z]+ \S+ HTTP/1\.[01]" \d{3} \d+ "[^"]*" "[^"]*"$')


def test_conf_file_holds_the_settings_workers_use(monkeypatch):
    production = settings.PROJECT_ROOT / "config" / "production.yaml"
    monkeypatch.setenv("POLLS_CONFIG", str(production))
    monkeypatch.setenv("POLLS_PORT", "8123")
    conf = runpy.run_path(str(settings.PROJECT_ROOT / "config" / "gunicorn.conf.py"))
    shared = serve.gunicorn_settings(settings.load(production, os.environ))
    assert {key: conf[key] for key in shared} == shared
    assert conf["bind"] == ["127.0.0.1:8123"] and conf["accesslog"] is None  # production: nginx logs
    assert conf["worker_class"] == "aiohttp.GunicornWebWorker" and conf["control_socket_disable"] is True
    assert conf["graceful_timeout"] == serve.SHUTDOWN_TIMEOUT


def test_deployment_guide_shows_the_tested_command():
    guide = (settings.PROJECT_ROOT / "docs" / "deployment.md").read_text()
    assert " ".join(guide.replace("\\\n", " ").split()).count(COMMAND) >= 1


async def test_documented_gunicorn_command_serves_pages_and_votes(
    tmp_path, unused_tcp_port, database_url, make_question, votes_of
):
    question = make_question("Gunicorn or python -m?")
    args = COMMAND.replace("127.0.0.1:8080", f"127.0.0.1:{unused_tcp_port}").split()
    args[0] = str(Path(sys.executable).parent / "gunicorn")
    env = {
        **os.environ,
        "POLLS_CONFIG": "config/polls_test.yaml",
        "POLLS_DATABASE_URL": database_url,
        "HOME": str(tmp_path),  # nothing of gunicorn's lands in the real home
    }
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        gunicorn = subprocess.Popen(args, cwd=settings.PROJECT_ROOT, env=env, stdout=stdout, stderr=stderr)
    base = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        async with aiohttp.ClientSession(base_url=base) as session:
            deadline = time.monotonic() + 30
            while True:
                assert gunicorn.poll() is None, err.read_text()
                try:
                    async with session.get("/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, err.read_text()
                await asyncio.sleep(0.1)

            async with session.get("/") as response:
                assert "Gunicorn or python -m?" in await response.text()
            vote = f"/poll/{question['id']}/vote"
            choice = question["choices"][1]
            async with session.post(vote, data={"choice": str(choice)}, allow_redirects=False) as response:
                assert response.status == 302
                assert response.headers["Location"] == f"/poll/{question['id']}/results"
        assert votes_of(question["id"])[choice] == 1
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        status = gunicorn.wait(30)
    assert status == 0, err.read_text()
    assert f"Listening at: http://127.0.0.1:{unused_tcp_port} ({gunicorn.pid})" in err.read_text()
    lines = out.read_text().splitlines()
    assert lines and all(COMBINED.match(line) for line in lines), lines
    assert any('"POST /poll/' in line and '" 302 ' in line for line in lines)


def test_gunicorn_log_says_where_it_listens(app_process):
    """Each worker binds its own socket (SO_REUSEPORT), so gunicorn's master has none to name."""
    app = app_process("--workers", "2")
    app.wait_serving(2)
    assert f"Listening at: {app.url} ({app.process.pid})" in app.log()
    assert "Listening at:  (" not in app.log()
