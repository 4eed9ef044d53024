"""gzip for HTML, by the request's Accept-Encoding (q-values included): a cached page is
compressed once, when it is cached, so serving it costs nothing more; other pages as they
go out. Every page says what it varies on (vary.PAGE) in one header set with it.
"""

import functools
import gzip
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import hdrs, web

from . import vary

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Below this, gzip's header and the CPU it costs buy next to nothing.
MIN_SIZE = 1024
_HTML = "text/html; charset=utf-8"
# Set whole on every cached page served, so that nothing is added to it per request.
_PLAIN_HEADERS = {hdrs.CONTENT_TYPE: _HTML, hdrs.VARY: vary.PAGE_VALUE}
_GZIP_HEADERS = {**_PLAIN_HEADERS, hdrs.CONTENT_ENCODING: "gzip"}


class Page(NamedTuple):
    """A cached page's bytes, plain and gzipped: what the cache keeps, so no request compresses."""

    plain: bytes
    gzipped: bytes


def page(body: bytes) -> Page:
    """Compress `body` once, as hard as gzip can: the cost is paid once per cached page."""
    return Page(body, gzip.compress(body, compresslevel=9, mtime=0))


def page_response(request: web.Request, cached: Page) -> web.Response:
    """The cached page, gzipped for a client that takes gzip, else as it is."""
    if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
        return web.Response(body=cached.gzipped, headers=_GZIP_HEADERS)
    return web.Response(body=cached.plain, headers=_PLAIN_HEADERS)


@functools.lru_cache(maxsize=256)  # browsers send a handful of distinct values
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether a client sending this Accept-Encoding takes gzip.

    gzip (or its old name x-gzip) named with q > 0; or not named and `*` with q > 0.
    """
    star = False
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return _quality(parameters) > 0
        if coding == "*":
            star = _quality(parameters) > 0
    return star


def _quality(parameters: str) -> float:
    """The q of `;q=0.5`-style parameters: 1 when absent, 0 when malformed (identity always works)."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0
            return q if 0 <= q <= 1 else 0
    return 1


def setup(app: web.Application) -> None:
    app.middlewares.append(compress_pages)


@web.middleware
async def compress_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """gzip the HTML pages made per request (forms, a voter's results, error pages) on the way
    out, and say what every page varies on.

    Outermost, so error pages are among them. A cached page (from `page_response`) chose its
    body and headers itself and is let through.
    """
    response = await handler(request)
    if type(response) is not web.Response or response.headers.get(hdrs.VARY) == vary.PAGE_VALUE:
        return response
    # The header as set, not `content_type`, which parses it: JSON answers pass here too.
    if response.headers.get(hdrs.CONTENT_TYPE, "").startswith("text/html"):
        vary.add(response.headers, *vary.PAGE)
        body = response.body
        if (
            isinstance(body, bytes)
            and len(body) >= MIN_SIZE
            and accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        ):
            response.enable_compression(web.ContentCoding.gzip)
    return response
