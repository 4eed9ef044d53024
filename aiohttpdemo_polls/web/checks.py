"""Checks every request passes before its view: an address that is text, a form from this site,
and the database within reach. Each refuses by raising; `errors.error_pages` renders the answer."""

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from aiohttp import web
from yarl import URL

from . import links
from .config import config_key, site
from .database import changes_key
from .i18n import N_

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = Awaitable[web.StreamResponse]


def setup(app: web.Application) -> None:
    app.middlewares.extend([refuse_unreadable, refuse_cross_site, step_aside])


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
    if not links.names_a_host(request):
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
    scheme = "https" if site(request)[config_key]["https"] else request.scheme
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


# Routes that answer without the database: they go on while it is away.
NO_DATABASE = frozenset({"healthz", "robots", "static", "language"})


@web.middleware
def step_aside(request: web.Request, handler: Handler) -> Answer:
    """While the database is known to be out of reach, a 503 at once instead of a wait for
    the timeout: nginx then sends reads to another host (config/nginx.conf), and a voter
    hears at once that nothing was counted."""
    if site(request)[changes_key].away and request.match_info.route.name not in NO_DATABASE:
        raise web.HTTPServiceUnavailable(headers={"Retry-After": "1"})
    return handler(request)
