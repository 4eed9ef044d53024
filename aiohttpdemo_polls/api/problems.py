"""Errors of the JSON API as `application/problem+json` (RFC 9457): the API application's
error writer, so every error of a request it took is one, whoever raised it. A view with more
to say (which fields were wrong) raises `Problem`.
"""

import json
from collections.abc import Mapping

from aiohttp import web

from ..web import statuses
from ..web.errors import Refused

CONTENT_TYPE = "application/problem+json"


class Problem(Refused):
    """An API request refused with a problem document that says more than its status."""


def response(
    request: web.Request, status: int, detail: str | None, errors: Mapping[str, str] | None
) -> web.Response:
    """A problem document: `type` about:blank (the status says it all), a title, the status,
    a sentence for a person, and `errors` (field name -> message) when fields were wrong."""
    body: dict = {
        "type": "about:blank",
        "title": statuses.title(status),
        "status": status,
        "detail": detail or statuses.api_text(status),
    }
    if errors:
        body["errors"] = dict(errors)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=CONTENT_TYPE,
        charset="utf-8",
    )
