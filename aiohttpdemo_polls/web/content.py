"""A published poll as the pages, the API and live results read it: from the cache (cache.py)
while it holds, else from the store; and whole pages, rendered and gzipped once for every reader."""

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import aiohttp_jinja2
from aiohttp import web

from ..store import connections, polls, rules
from . import compression, i18n
from .cache import cache_key, expiry
from .config import site
from .database import engine_key
from .i18n import N_
from .voting import voter_id


class PollContent(NamedTuple):
    """A published poll as every reader sees it: the question row and its choices."""

    question: Any
    choices: list


def poll_expiry(question: Any) -> float:
    """When a poll's cached content or page goes stale by itself: at its closing, if still open."""
    return expiry(None if question.closed else question.closes_at)


REMOVED = N_("The site's operator removed this poll.")


def shown(question: Any) -> None:
    """The one check of a poll the operator hid: every page of a poll (its form, results,
    presenter view, vote, report form, live socket, API body, the maker's files) reads it
    through here, and answers 410."""
    if question.hidden:
        raise web.HTTPGone(text=REMOVED)


async def published_content(request: web.Request, question_id: int) -> PollContent:
    """The published poll (cached until it changes or reaches `closes_at`), else a 404; 410
    when the operator hid it."""

    async def load() -> tuple[PollContent | None, float]:
        async with connections.connection(site(request)[engine_key]) as conn:
            found = await polls.published_poll(conn, question_id)
        if found is None:
            return None, 0
        question, choices = found
        return PollContent(question, choices), poll_expiry(question)

    content = await site(request)[cache_key].get(("content", question_id), load)
    if content is None:
        raise web.HTTPNotFound()
    shown(content.question)
    return content


async def voters_poll(request: web.Request, question_id: int, voter: str) -> tuple[Any, list]:
    """The poll read for this voter (their own choices marked, just-committed votes in it), or
    404 (410 when hidden)."""
    async with connections.connection(site(request)[engine_key]) as conn:
        found = await polls.published_poll(conn, question_id, voter)
    if found is None:  # gone since the cached copy was made
        raise web.HTTPNotFound()
    shown(found[0])
    return found


async def may_see_counts(request: web.Request, question: Any) -> bool:
    """rules.may_see_counts for this reader (never the maker here); their ballot is read
    only when it decides."""
    if rules.may_see_counts(question, voted=False, is_maker=False):
        return True
    voter = voter_id(request)
    if voter is None or not rules.may_see_counts(question, voted=True, is_maker=False):
        return False
    async with connections.connection(site(request)[engine_key]) as conn:
        return await polls.has_voted(conn, question.id, voter)


Render = Callable[[], Awaitable[tuple[bytes | None, float]]]  # -> (page or None for a 404, expiry)


async def cached_page(request: web.Request, key: tuple, render: Render) -> web.Response:
    """A page the same for every reader: rendered and gzipped once, then served from the cache."""

    async def load() -> tuple[compression.Page | None, float]:
        body, expires = await render()
        return (None if body is None else compression.page(body)), expires

    # Per host: a page names its own full address (og:url) from the host it was reached by,
    # and one reader's Host header must not become every reader's link. Per language: each
    # is its own page.
    cached = await site(request)[cache_key].get((*key, request.host, i18n.language(request)), load)
    if cached is None:
        raise web.HTTPNotFound()
    return compression.page_response(request, cached)


def render_page(request: web.Request, template: str, context: dict) -> bytes:
    """A page's bytes for the cache; `request` gives templates the language and host."""
    return aiohttp_jinja2.render_string(template, request, {**context, "request": request}).encode()
