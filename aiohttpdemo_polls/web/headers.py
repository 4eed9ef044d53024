"""The security headers of every response, and the stricter ones of a maker's private pages."""

from aiohttp import web


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(security_headers)


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


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
