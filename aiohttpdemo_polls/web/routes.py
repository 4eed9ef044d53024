"""What the features' routes share: the address of a poll, and GET that answers HEAD too."""

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Digits only: anything else under /poll/ is a 404 from the router itself.
POLL = r"/poll/{question_id:\d+}"


def add_get(resource: web.Resource, handler: Handler) -> None:
    """GET and HEAD, as `router.add_get` adds them: HEAD is due wherever GET is (RFC 9110),
    and `add_route("GET")` on a resource that takes POST too adds no HEAD by itself."""
    resource.add_route("HEAD", handler)
    resource.add_route("GET", handler)
