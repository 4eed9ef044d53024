"""The fast access logger writes exactly what aiohttp's own writes for the combined format."""

import logging

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_log import AccessLogger

from aiohttpdemo_polls.logs import ACCESS_LOG_FORMAT, CombinedAccessLogger


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_combined_access_logger_matches_aiohttps_line_for_line():
    logger = logging.getLogger("test.access")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    captured = Lines()
    logger.addHandler(captured)
    try:
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
                cls(logger, ACCESS_LOG_FORMAT).log(request, response, 0.0004)
    finally:
        logger.removeHandler(captured)
    assert len(captured.lines) == 4
    assert captured.lines[0] == captured.lines[1]
    assert captured.lines[2] == captured.lines[3]
    assert (
        '"POST /poll/7/vote HTTP/1.1" 302 0 "http://example.test/"q"" "wrk/4 (100% sure)"'
        in captured.lines[3]
    )
