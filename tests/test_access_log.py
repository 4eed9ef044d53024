"""The fast access logger writes exactly what aiohttp's own writes for the combined format,
a loop turn's lines at a time."""

import asyncio
import logging
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_log import AccessLogger

from aiohttpdemo_polls.logs import ACCESS_LOG_FORMAT, CombinedAccessLogger, flush_access_lines


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Captured(NamedTuple):
    logger: logging.Logger
    lines: list[str]  # the text of each record the logger was handed


@pytest.fixture
def captured(request) -> Iterator[Captured]:
    """A logger of the test's own (so a batch of its own) and what it was handed."""
    logger = logging.getLogger(f"test.access.{request.node.name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = Lines()
    logger.addHandler(handler)
    yield Captured(logger, handler.lines)
    logger.removeHandler(handler)


def test_combined_access_logger_matches_aiohttps_line_for_line(captured):
    requests = [
        make_mocked_request("GET", "/poll/7/results?already=1&x=%41"),
        make_mocked_request(
            "POST",
            "/poll/7/vote",
            headers={"Referer": 'http://example.test/"q"', "User-Agent": "wrk/4 (100% sure)"},
        ),
    ]
    responses = [web.Response(body=b"<p>hello</p>"), web.Response(status=302)]
    for request, response in zip(requests, responses, strict=True):
        for cls in (AccessLogger, CombinedAccessLogger):
            cls(captured.logger, ACCESS_LOG_FORMAT).log(request, response, 0.0004)
    lines = captured.lines
    assert len(lines) == 4
    assert lines[0] == lines[1]
    assert lines[2] == lines[3]
    assert '"POST /poll/7/vote HTTP/1.1" 302 0 "http://example.test/"q"" "wrk/4 (100% sure)"' in lines[3]


async def test_lines_of_one_loop_turn_are_written_together_at_the_next(captured):
    access = CombinedAccessLogger(captured.logger, ACCESS_LOG_FORMAT)
    for path in ("/", "/poll/1", "/poll/2"):
        access.log(make_mocked_request("GET", path), web.Response(), 0.001)
    assert captured.lines == []  # not yet: the loop has not turned
    await asyncio.sleep(0)
    assert len(captured.lines) == 1
    assert [line.split('"')[1] for line in captured.lines[0].split("\n")] == [
        "GET / HTTP/1.1",
        "GET /poll/1 HTTP/1.1",
        "GET /poll/2 HTTP/1.1",
    ]
    access.log(make_mocked_request("GET", "/poll/3"), web.Response(), 0.001)
    flush_access_lines()  # what serve.py does once the last request is done
    assert '"GET /poll/3 HTTP/1.1"' in captured.lines[1]
    await asyncio.sleep(0)
    assert len(captured.lines) == 2  # the flush due on the loop found nothing left


def test_lines_left_by_a_loop_that_closed_are_written_with_the_next_ones(captured):
    access = CombinedAccessLogger(captured.logger, ACCESS_LOG_FORMAT)

    async def log(path: str, then_stop: bool = False) -> None:
        access.log(make_mocked_request("GET", path), web.Response(), 0.001)
        if then_stop:
            asyncio.get_running_loop().stop()  # before the turn the flush is due on

    loop = asyncio.new_event_loop()
    first = loop.create_task(log("/first", then_stop=True))
    loop.run_forever()
    loop.close()
    assert first.done()
    assert captured.lines == []
    asyncio.run(log("/second"))
    assert len(captured.lines) == 1
    assert "/first" in captured.lines[0] and "/second" in captured.lines[0]
