"""Error pages in the site's layout, cross-site refusal, stepping aside while the database is
away, and the security headers of every response."""

import errno
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

import aiohttp_jinja2
import psycopg2
from aiohttp import web
from yarl import URL

from . import db, links, logs, problems
from .i18n import N_
from .keys import config_key, notices_key

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = Awaitable[web.StreamResponse]

MESSAGES = {
    400: N_("The request could not be understood."),
    403: N_("You are not allowed to do that."),
    404: N_("There is no such page. The poll may not exist or may not be published yet."),
    405: N_("That address does not accept this kind of request."),
    409: N_("That cannot be done in the poll's current state."),
    413: N_("The request was too large."),
    429: N_("Too many requests from your address. Please try again later."),
    500: N_("Something went wrong on our side. It has been logged; please try again later."),
    503: N_("The service is unavailable right now. Please try again in a moment."),
}
# The page titles of those statuses (HTTPStatus's phrases, for the catalogs).
REASONS = {
    400: N_("Bad Request"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    409: N_("Conflict"),
    413: N_("Content Too Large"),
    429: N_("Too Many Requests"),
    500: N_("Internal Server Error"),
    503: N_("Service Unavailable"),
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
    """The app's own error page for `status`, with a link back to the index; under /api/,
    a problem document (problems.py) instead, as programs read them."""
    if problems.is_api(request):
        return problems.response(status, message)
    reason = _reason(status)
    context = {
        "request": request,
        "status": status,
        "reason": reason,
        "message": message or MESSAGES.get(status, reason),
    }
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


def _reason(status: int) -> str:
    if status in REASONS:
        return REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return N_("Error")


def _custom_text(exc: web.HTTPException) -> str | None:
    """A message a view gave the exception, rather than aiohttp's default '404: Not Found'.

    aiohttp's own 413 names byte counts in English only: the page says MESSAGES[413] instead."""
    text = exc.text or ""
    if text == f"{exc.status}: {exc.reason}" or isinstance(exc, web.HTTPRequestEntityTooLarge):
        return None
    return text


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every 4xx/5xx into a page in the site's layout (a problem document under /api/);
    log unexpected errors. A read whose connection was lost under it runs once more first."""
    try:
        try:
            return await handler(request)
        except psycopg2.Error as exc:
            # Lost under a read (a failover, an ended backend, a pooler replacing its
            # connections), not failed by its SQL: a read changes nothing, so it runs once
            # more, on another connection, and the reader sees no error.
            if request.method not in SAFE_METHODS or not db.connection_lost(exc):
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
    except problems.Problem as exc:
        return exc.response()
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


ADDRESS_NOT_UTF8 = N_("The address could not be read: once its escapes are decoded, it is not valid UTF-8.")
ADDRESS_CONTROL = N_("The address holds a control character (such as an encoded NUL byte).")
HOST_NAMES_NO_HOST = N_("The request's Host header does not name a host.")
NOT_A_PROXY = N_("This site is not a proxy: it opens no tunnels (CONNECT).")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's category Cc


def address_problem(raw: str) -> str | None:
    """Why the address as sent (path and query) is not text, or None.

    yarl reads an escape that is not UTF-8 (%FF, %ED%A0%80) as U+FFFD, so it would reach
    views as if typed; one strict reading here instead of a check in every view.
    """
    if "%" not in raw and raw.isascii():
        return None  # nearly every request; raw controls are refused by aiohttp's parser
    try:
        text = unquote_to_bytes(raw.encode("utf-8", "surrogateescape")).decode("utf-8")
    except UnicodeError:
        return ADDRESS_NOT_UTF8
    return ADDRESS_CONTROL if _CONTROL.search(text) else None


# The checks below are plain functions: each hands back the handler's awaitable, so a request
# (a live WebSocket's lasts hours) holds no suspended frame of theirs in memory.
@web.middleware
def refuse_unreadable(request: web.Request, handler: Handler) -> Answer:
    """Refuse, saying why, a request no view can read as one for a page of this site: a
    CONNECT, a Host naming no host, an address that is not text. `error_pages` renders it."""
    if request.method == "CONNECT":
        raise web.HTTPMethodNotAllowed("CONNECT", (), text=NOT_A_PROXY)
    if links.origin(request) is None:
        raise web.HTTPBadRequest(text=HOST_NAMES_NO_HOST)
    problem = address_problem(request.raw_path)
    if problem is not None:
        raise web.HTTPBadRequest(text=problem)
    return handler(request)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# `same-origin`: our own pages; `none`: the person typed or bookmarked the address.
# `same-site` (another host of the same registrable domain, perhaps someone else's) and
# `cross-site` are refused: none of our forms is ever sent from another host.
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
CROSS_SITE = N_(
    "This form was sent from another site, so it was refused. Open the page on this site and try again."
)


# Every POST names the same few origins (ours, and what browsers send): parse each once.
@functools.lru_cache(maxsize=256)
def _origin_key(url: str) -> tuple[str, str | None, int | None] | None:
    """(scheme, host, port) with default ports filled in, so `http://h` equals `http://h:80`."""
    try:
        parsed = URL(url)
    except ValueError:
        return None
    if not parsed.scheme or not parsed.host or parsed.path not in ("", "/"):
        return None
    return parsed.scheme, parsed.host, parsed.port


def _own_origin(request: web.Request) -> tuple[str, str | None, int | None] | None:
    """The origin a browser names when our own pages post: scheme and host as it reached us."""
    scheme = "https" if request.app[config_key]["https"] else request.scheme
    return _origin_key(f"{scheme}://{request.host}")


def cross_site_reason(request: web.Request) -> str | None:
    """Why this state-changing request looks like it comes from another site, or None.

    Browsers send `Sec-Fetch-Site` and/or `Origin` with a form's POST; other clients (curl,
    scripts) send neither and are let through, as they carry no victim's cookies.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in ALLOWED_FETCH_SITES:
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("Origin")
    # "null" comes from sandboxed frames, file: pages and cross-site redirects: not ours.
    if origin is not None:
        theirs = _origin_key(origin)
        if theirs is None or theirs != _own_origin(request):
            return f"Origin: {origin}"
    return None


@web.middleware
def refuse_cross_site(request: web.Request, handler: Handler) -> Answer:
    """Refuse a request that changes something when another site's page sent it.

    Before the body is read; `error_pages`, outside this, renders the 403. Reads return
    at once: nearly all requests are reads, and each pays for every middleware it passes.
    """
    if request.method not in SAFE_METHODS:
        reason = cross_site_reason(request)
        if reason is not None:
            log.info("refused cross-site %s %s (%s)", request.method, request.path, reason)
            raise web.HTTPForbidden(text=CROSS_SITE)
    return handler(request)


# An address holding a poll's manage token ({token} in routes.MANAGE: the manage page, its
# confirm-delete step, the exports) is the key to that poll. A Referer from it names the site
# alone, even to our own pages (access logs write Referers), and no cache keeps the answer.
# (Not no-referrer: browsers then send `Origin: null` with the page's forms, as a foreign page.)
PRIVATE_HEADERS = {"Referrer-Policy": "strict-origin", "Cache-Control": "private, no-store"}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers that keep browsers from sniffing, framing and leaking referrers.

    Not on a WebSocket's 101, which has no document to protect: a live socket keeps its
    response, headers and all, for as long as it is open."""
    if response.status == 101:
        return
    headers = response.headers
    if "token" in request.match_info:
        for name, value in PRIVATE_HEADERS.items():
            headers[name] = value
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.path.startswith("/static/"):
        # Revalidate with the ETag/Last-Modified aiohttp sends, so edits show at once.
        headers.setdefault("Cache-Control", "no-cache")


# Routes that answer without the database: they go on while it is away.
NO_DATABASE = frozenset({"healthz", "robots", "static", "language"})


@web.middleware
def step_aside(request: web.Request, handler: Handler) -> Answer:
    """While the database is known to be out of reach, a 503 at once instead of a wait for
    the timeout: nginx then sends reads to another host (config/nginx.conf), and a voter
    hears at once that nothing was counted."""
    if request.app[notices_key].away and request.match_info.route.name not in NO_DATABASE:
        raise web.HTTPServiceUnavailable(headers={"Retry-After": "1"})
    return handler(request)
