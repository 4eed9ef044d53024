"""The security headers of every response, and the stricter ones of private pages (a maker's,
the operator's)."""

import functools
from typing import TypeVar

from aiohttp import web

R = TypeVar("R", bound=web.AbstractResource)
private_resources_key = web.AppKey("private_resources", set[web.AbstractResource])
noindex_resources_key = web.AppKey("noindex_resources", set[web.AbstractResource])


def setup(app: web.Application) -> None:
    # The signal holds the set itself: every response is checked, and this costs no lookup.
    private = app[private_resources_key] = set()
    noindex = app[noindex_resources_key] = set()
    app.on_response_prepare.append(functools.partial(security_headers, private, noindex))


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


# Every answer of a private resource (see `private`), refusals included. A Referer from it names
# the site alone, even to our own pages (access logs write Referers), and no cache keeps it.
# (Not no-referrer: browsers then send `Origin: null` with the page's forms, as a foreign page.)
PRIVATE_HEADERS = {"Referrer-Policy": "strict-origin", "Cache-Control": "private, no-store"}
# And of those marked `noindex` too: the operator's pages, whose address is no secret.
NOINDEX_HEADERS = {**PRIVATE_HEADERS, "X-Robots-Tag": "noindex, nofollow"}


def private(app: web.Application, resource: R, noindex: bool = False) -> R:
    """Mark `resource` private: its address holds a secret (a poll's manage token, the key to
    that poll), which no public page links to and no Referer or cache may carry further.
    `noindex`: a page whose address is known (the operator's), kept out of search engines too."""
    app[private_resources_key].add(resource)
    if noindex:
        app[noindex_resources_key].add(resource)
    return resource


async def security_headers(
    private: set[web.AbstractResource],
    noindex: set[web.AbstractResource],
    request: web.Request,
    response: web.StreamResponse,
) -> None:
    """Headers that keep browsers from sniffing, framing and leaking referrers.

    Not on a WebSocket's 101, which has no document to protect: a live socket keeps its
    response, headers and all, for as long as it is open."""
    if response.status == 101:
        return
    headers = response.headers
    resource = request.match_info.route.resource
    if resource in private:
        for name, value in (NOINDEX_HEADERS if resource in noindex else PRIVATE_HEADERS).items():
            headers[name] = value
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.path.startswith("/static/"):
        # Revalidate with the ETag/Last-Modified aiohttp sends, so edits show at once.
        headers.setdefault("Cache-Control", "no-cache")
