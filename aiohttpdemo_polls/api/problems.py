"""Errors of the JSON API as `application/problem+json` (RFC 9457): the API application's
error writer, so every error of a request it took is one, whoever raised it. A view with more
to say (which fields were wrong) raises `Problem`.
"""

import json
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web

from ..web.errors import Refused

CONTENT_TYPE = "application/problem+json"

# What an API caller is told when the code that refused said nothing more specific.
DETAILS = {
    400: "The request could not be understood.",
    403: "You are not allowed to do that.",
    404: "There is no such poll or address. The poll may not exist or may not be published yet.",
    405: "That address does not accept this method; the Allow header lists those it does.",
    409: "That cannot be done in the poll's current state.",
    413: "The request body is too large.",
    415: "Send the body as JSON, with Content-Type: application/json.",
    422: "Some fields are not valid; `errors` says what is wrong with each.",
    429: "Too many requests. Try again after the number of seconds in Retry-After.",
    500: "Something went wrong on our side. It has been logged; please try again later.",
    503: "The service is unavailable right now. Please try again in a moment.",
}


class Problem(Refused):
    """An API request refused with a problem document that says more than its status."""


def title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def response(
    request: web.Request, status: int, detail: str | None, errors: Mapping[str, str] | None
) -> web.Response:
    """A problem document: `type` about:blank (the status says it all), a title, the status,
    a sentence for a person, and `errors` (field name -> message) when fields were wrong."""
    body: dict = {
        "type": "about:blank",
        "title": title(status),
        "status": status,
        "detail": detail or DETAILS.get(status, title(status)),
    }
    if errors:
        body["errors"] = dict(errors)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=CONTENT_TYPE,
        charset="utf-8",
    )
