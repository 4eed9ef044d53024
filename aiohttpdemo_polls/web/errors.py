"""Every 4xx and 5xx answer, whoever raised it, written by the application that took the request
(the site's page, the API's problem document); unexpected errors logged."""

import errno
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp_jinja2
import psycopg2
from aiohttp import web

from .. import logs
from ..store import connections
from . import statuses
from .checks import SAFE_METHODS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """A request refused with more to say than its status: a sentence, and what is wrong with
    which field. Raised by views; written as the application writes its errors."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or str(status))
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers


# How an application writes an error answer: (request, status, detail, field errors) -> response.
# A nested application (the API) sets its own: the innermost that took the request writes.
ErrorWriter = Callable[[web.Request, int, str | None, Mapping[str, str] | None], web.Response]
error_writer_key = web.AppKey("error_writer", ErrorWriter)


def setup(app: web.Application) -> None:
    app.middlewares.append(error_pages)
    app[error_writer_key] = error_page


def render_error(
    request: web.Request, status: int, message: str | None = None, errors: Mapping[str, str] | None = None
) -> web.Response:
    """The error answer of the application that took the request."""
    writer = next(
        app[error_writer_key] for app in reversed(request.match_info.apps) if error_writer_key in app
    )
    return writer(request, status, message, errors)


def error_page(
    request: web.Request, status: int, message: str | None, errors: Mapping[str, str] | None
) -> web.Response:
    """The site's own error page for `status`, with a link back to the index."""
    context = {
        "request": request,
        "status": status,
        "reason": statuses.title(status),
        "message": message or statuses.page_text(status),
    }
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


def _custom_text(exc: web.HTTPException) -> str | None:
    """A message a view gave the exception, rather than aiohttp's default '404: Not Found'.

    aiohttp's own 413 names byte counts in English only: the answer takes statuses.py's text instead."""
    text = exc.text or ""
    if text == f"{exc.status}: {exc.reason}" or isinstance(exc, web.HTTPRequestEntityTooLarge):
        return None
    return text


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every 4xx/5xx into the application's error answer (a page in the site's layout);
    log unexpected errors. A read whose connection was lost under it runs once more first."""
    try:
        try:
            return await handler(request)
        except psycopg2.Error as exc:
            # Lost under a read (a failover, an ended backend, a pooler replacing its
            # connections), not failed by its SQL: a read changes nothing, so it runs once
            # more, on another connection, and the reader sees no error.
            if request.method not in SAFE_METHODS or not connections.connection_lost(exc):
                raise
            reason = logs.first_line(exc)
            log.info("read again after a lost connection: %s %s (%s)", request.method, request.path, reason)
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = render_error(request, exc.status, _custom_text(exc))
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Refused as exc:
        response = render_error(request, exc.status, exc.detail, exc.errors)
        response.headers.update(exc.headers or {})
        return response
    except (psycopg2.OperationalError, psycopg2.InterfaceError, TimeoutError) as exc:
        # OperationalError: the server is down or went away. InterfaceError: it went away
        # between a query's answer and the reading of its rows (psycopg2 then calls the
        # cursor closed). TimeoutError: it did not answer within `database.timeout` (aiopg
        # then closes that connection). One line, no traceback: during an outage every
        # request lands here, and the cause is known.
        reason = logs.first_line(exc)
        log.warning("database unavailable for %s %s: %s", request.method, request.path, reason)
        return render_error(request, 503)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            log.exception("error handling %s %s", request.method, request.path)
            return render_error(request, 500)
        # aiohttp's static files handler lets "File name too long" through: there is
        # no such file, so it is a 404 like any other missing one.
        return render_error(request, 404)
    except Exception:
        # The one place a catch-all belongs: log the traceback, show the user a page.
        log.exception("error handling %s %s", request.method, request.path)
        return render_error(request, 500)
