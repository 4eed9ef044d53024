"""Full links to this site for people to share (manage page, QR code, `og:url`), built from
the origin the request reached, so they are right behind nginx, on a laptop and in tests.
"""

import functools
import re

import jinja2
from aiohttp import web
from yarl import URL

from .config import config_key, site

# A Host header as RFC 9110 allows it: a name or an address, then perhaps a port. Anything
# else (spaces, bytes past ASCII, a path, user info) names no host a link could lead to.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)(?::[0-9]{0,5})?")


@functools.lru_cache(maxsize=256)
def _origin(scheme: str, host: str) -> URL | None:
    # Cached: every request asks (checks.refuse_unreadable), from the same few hosts.
    if not _HOST.fullmatch(host):
        return None
    try:
        return URL.build(scheme=scheme, authority=host)
    except ValueError:  # a port past 65535, brackets round something not an IPv6 address
        return None


def names_a_host(request: web.Request) -> bool:
    """Whether the request's Host header names a host a link could lead to."""
    return _origin("http", request.host) is not None


def origin(request: web.Request) -> URL | None:
    """The site's origin as this request reached it, or None when its Host names no host.

    Built from the scheme and Host alone, not `request.url`: a CONNECT's or an
    absolute-form request's target says nothing about where this site is."""
    scheme = "https" if site(request)[config_key]["https"] else request.scheme
    return _origin(scheme, request.host)


def absolute(request: web.Request, path: URL) -> str:
    """A full link to share; https when the config says the site is served over it.

    Just the path when the origin is unknown: the 400 page refusing such a request
    renders links too, and a relative one still leads somewhere."""
    found = origin(request)
    return str(path) if found is None else str(found.join(path))


def short(link: str) -> str:
    """The link as people type it from a screen: without its scheme."""
    return link.split("://", 1)[-1]


@jinja2.pass_context
def absolute_filter(context: jinja2.runtime.Context, path: URL) -> str:
    """`{{ url('poll', question_id=1) | absolute }}` in templates, e.g. for `og:url`.

    Views pass `request` in every template's context for it (a context processor would add
    a middleware to every request, and aiohttp_jinja2's stores it under a string key).
    """
    return absolute(context["request"], path)
