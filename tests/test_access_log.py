"""One access-log record per request, one Apache combined line each, in both ways of serving."""

import asyncio
import json
import re
import signal
from pathlib import Path

import aiohttp
import pytest
import yaml

from aiohttpdemo_polls import serve, settings

COMBINED = re.compile(r'^\S+ - - \[[^]]+\] "[A-Z]+ \S+ HTTP/1\.[01]" \d{3} \d+ "[^"]*" "[^"]*"$')
REQUESTS = 64
TEST_CONFIG = settings.PROJECT_ROOT / "config" / "polls_test.yaml"

# Loaded by the app's interpreter at start (PYTHONPATH), and inherited by gunicorn's forked
# workers: writes the message of every access-log record, as one JSON string per line.
RECORDER = """
import json, logging, os

_make_record = logging.getLogRecordFactory()


def _record(*args, **kwargs):
    record = _make_record(*args, **kwargs)
    if record.name in ("aiohttp.access", "gunicorn.access"):
        with open(os.environ["ACCESS_RECORDS"], "a") as out:
            out.write(json.dumps(record.getMessage()) + "\\n")
    return record


logging.setLogRecordFactory(_record)
"""


def start_recorded(app_process, tmp_path: Path, *args: str):
    """The app with every access-log record it makes written to a file; (app, records file)."""
    folder = tmp_path / "recorder"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(RECORDER)
    records = tmp_path / "records.jsonl"
    app = app_process(*args, env={"PYTHONPATH": str(folder), "ACCESS_RECORDS": str(records)})
    return app, records


async def browse(url: str, question_id: int) -> None:
    """REQUESTS requests over 16 connections at once, so that many finish in one loop turn."""
    connector = aiohttp.TCPConnector(limit=16)
    headers = {"Referer": "http://example.test/"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def get(n: int) -> None:
            path = f"/poll/{question_id}?n={n}" if n % 2 else f"/no/such/page?n={n}"
            async with session.get(url + path) as response:
                await response.read()

        await asyncio.gather(*(get(n) for n in range(REQUESTS)))


def stop(app) -> None:
    app.process.send_signal(signal.SIGTERM)
    assert app.wait_exit(serve.SHUTDOWN_TIMEOUT + 10) == 0, app.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_each_request_is_one_record_of_one_combined_line(app_process, tmp_path, make_question, workers):
    question = make_question()
    app, records = start_recorded(app_process, tmp_path, "--workers", workers)
    app.wait_serving(int(workers))

    asyncio.run(browse(app.url, question["id"]))
    stop(app)

    messages = [json.loads(line) for line in records.read_text().splitlines()]
    ours = [m for m in messages if "?n=" in m]
    assert len(ours) == REQUESTS, "one record per request"
    assert all(COMBINED.match(m) for m in messages), messages  # one line each, no batches
    assert sorted(app.access_lines()) == sorted(messages), "stdout has each record as one line"
    assert sum('"GET /no/such/page?n=' in m and '" 404 ' in m for m in ours) == REQUESTS // 2
    assert all('"http://example.test/" "Python/' in m for m in ours)
    assert " DEBUG " not in app.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_access_log_false_writes_no_access_lines(app_process, tmp_path, make_question, workers):
    question = make_question()
    quiet = tmp_path / "quiet.yaml"
    config = yaml.safe_load(TEST_CONFIG.read_text(encoding="utf-8"))
    quiet.write_text(yaml.safe_dump({**config, "access_log": False}))
    app, records = start_recorded(app_process, tmp_path, "-c", str(quiet), "--workers", workers)
    app.wait_serving(int(workers))

    asyncio.run(browse(app.url, question["id"]))
    stop(app)

    assert not records.exists() and app.access_lines() == []
