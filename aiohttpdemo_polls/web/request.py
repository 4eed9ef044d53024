"""Reading what a request names: the poll in its address, the page of a listing. A poll id no poll
can have is a 404, here, so views never see it; a bad page number each caller refuses its own way."""

import re

from aiohttp import web

from ..store.schema import PG_INT_MAX

PAGE_SIZE = 20
_PAGE = re.compile(r"[1-9][0-9]{0,8}")


def poll_id(request: web.Request) -> int:
    """The poll's id in the URL, or a 404 for one no poll can have (past PostgreSQL's integer).

    The routes admit digits only, but of any length and in any script: `\\d` is Unicode.
    """
    raw = request.match_info["question_id"]
    if not raw.isascii() or len(raw.lstrip("0")) > 10 or not 0 < int(raw) <= PG_INT_MAX:
        raise web.HTTPNotFound()
    return int(raw)


def page_number(request: web.Request) -> int | None:
    """The `page` of a listing from the query (1 when absent); None for one no listing has."""
    raw = request.query.get("page", "1")
    return int(raw) if _PAGE.fullmatch(raw) else None


def page_count(total: int) -> int:
    """How many pages `total` items fill, PAGE_SIZE a page: one, even when there are none."""
    return max(1, -(-total // PAGE_SIZE))
