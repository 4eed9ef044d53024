"""Error pages in the site's layout, and the security headers every response carries."""

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import aiohttp_jinja2
import psycopg2
from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MESSAGES = {
    400: "The request could not be understood.",
    403: "You are not allowed to do that.",
    404: "There is no such page. The poll may not exist or may not be published yet.",
    405: "That address does not accept this kind of request.",
    409: "That cannot be done in the poll's current state.",
    413: "The request was too large.",
    500: "Something went wrong on our side. It has been logged; please try again later.",
    503: "The service is unavailable right now. Please try again in a moment.",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def render_error(request: web.Request, status: int, message: str | None = None) -> web.Response:
    """The app's own error page for `status`, with a link back to the index."""
    reason = _reason(status)
    context = {"status": status, "reason": reason, "message": message or MESSAGES.get(status, reason)}
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _custom_text(exc: web.HTTPException) -> str | None:
    """A message a view gave the exception, rather than aiohttp's default '404: Not Found'."""
    text = exc.text or ""
    return None if text == f"{exc.status}: {exc.reason}" else text


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every 4xx/5xx into a page in the site's layout; log unexpected errors."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = render_error(request, exc.status, _custom_text(exc))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except psycopg2.OperationalError:
        log.exception("database unavailable for %s %s", request.method, request.path)
        return render_error(request, 503)
    except Exception:
        # The one place a catch-all belongs: log the traceback, show the user a page.
        log.exception("error handling %s %s", request.method, request.path)
        return render_error(request, 500)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers that keep browsers from sniffing, framing and leaking referrers."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.path.startswith("/static/"):
        # Revalidate with the ETag/Last-Modified aiohttp sends, so edits show at once.
        headers.setdefault("Cache-Control", "no-cache")
