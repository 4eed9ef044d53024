"""The kinds of poll with pages of their own: each answers its poll page, its results page
and its presenter view (None: present.py's, which shows any poll's choices). A kind not
listed here (a poll with choices) has views.py's pages."""

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import web

from ..web.content import PollContent
from . import dates, ranked


class KindPages(NamedTuple):
    poll: Callable[[web.Request, PollContent], Awaitable[web.Response]]
    results: Callable[[web.Request, PollContent, str | None], Awaitable[web.Response]]  # with its notice
    present: Callable[[web.Request, PollContent], Awaitable[web.Response]] | None


PAGES: dict[str, KindPages] = {
    "ranked": KindPages(ranked.poll, ranked.results, ranked.present),
    dates.KIND: KindPages(dates.grid, dates.results, None),  # the grid is both the form and the results
}
