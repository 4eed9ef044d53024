"""Voter codes for the maker, behind the manage page's token: making a batch, and its downloads
(CSV, and printable cards with a QR code each).

Only a keyed hash of each code is stored (store/codes.py), so the plain codes exist only in
the batch's own address: its random seed, which gives the codes again. Making a batch leads
(303) to that address, where the maker downloads them; it answers for BATCH_TIME, then the
codes are gone for good, and a copy of the database never had them.
"""

import asyncio
import base64
import re
from datetime import timedelta
from typing import Any, NamedTuple

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from ..store import codes, connections
from ..web import links, qr
from ..web.config import site
from ..web.database import changes_key, engine_key
from ..web.forms import read_form
from ..web.i18n import N_
from ..web.voting import votes_key
from . import exports, manage

_NUMBER = re.compile(r"[0-9]{1,5}")  # ASCII digits only: int() reads others too
BATCH_TIME = timedelta(hours=24)  # how long a batch's address gives its codes
CARDS_PER_PAGE = 200  # under a second of QR codes, drawn off the event loop
BAD_COUNT = N_("Give a whole number of codes from 1 to 10,000.")
BATCH_GONE = N_(
    "These codes can no longer be downloaded: they are shown for 24 hours after they are made, "
    "and only a fingerprint of each is kept. Make new ones if you need them."
)


def _count(typed: object) -> int | None:
    """The form's count of codes to make, 1 to MAX_CODES, in ASCII digits; else None."""
    if not isinstance(typed, str) or not _NUMBER.fullmatch(typed.strip()):
        return None
    count = int(typed.strip())
    return count if 1 <= count <= codes.MAX_CODES else None


def _seed_text(seed: bytes) -> str:
    return base64.urlsafe_b64encode(seed).rstrip(b"=").decode()


def _seed(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=")  # the route lets only 43 URL-safe characters in


def _hashes(key: bytes, question_id: int, seed: bytes, count: int) -> list[bytes]:
    return [codes.code_hash(key, question_id, code) for code in codes.batch_codes(seed, count)]


async def make_codes(request: web.Request) -> web.Response:
    """Make 1 to 10,000 codes (the form's `count`), then on to the batch's page (303); the
    manage page again (400) naming the field when the count is not one."""
    form = await read_form(request)
    count = _count(form.get("count"))
    key = site(request)[votes_key].code_key
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.exportable(request, conn)
        if count is None:
            typed = form.get("count")
            return await manage.codes_refused(
                request, conn, poll, typed if isinstance(typed, str) else "", BAD_COUNT
            )
        while True:  # another batch only if one of its codes was the poll's already (~never)
            seed = codes.new_seed()
            # 10,000 codes take some 40 ms of hashing: off the loop, which serves votes meanwhile.
            hashes = await asyncio.to_thread(_hashes, key, poll.id, seed, count)
            if await codes.add_batch(conn, site(request)[changes_key], poll.id, hashes):
                break
    raise web.HTTPSeeOther(_batch_url(request, "codes_batch", count, seed))


def _batch_url(request: web.Request, name: str, count: int, seed: bytes) -> URL:
    return request.app.router[name].url_for(
        question_id=request.match_info["question_id"],
        token=request.match_info["token"],
        count=str(count),
        seed=_seed_text(seed),
    )


class Batch(NamedTuple):
    """A batch of codes, as its address names it."""

    poll: Any
    seed: bytes
    count: int


async def _batch(request: web.Request) -> Batch:
    """The poll and the batch from its address; 404 for one not made for this poll, 410 once
    it is older than BATCH_TIME. Only its first and last codes are drawn to check it."""
    count = int(request.match_info["count"])
    if not 1 <= count <= codes.MAX_CODES:
        raise web.HTTPNotFound()
    seed = _seed(request.match_info["seed"])
    ends = codes.batch_codes(seed, 1) + codes.batch_codes(seed, 1, start=count - 1)
    key = site(request)[votes_key].code_key
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.exportable(request, conn)
        first, last = (codes.code_hash(key, poll.id, code) for code in ends)
        age = await codes.batch_age(conn, poll.id, first, last)
    if age is None:
        raise web.HTTPNotFound()
    if age > BATCH_TIME:
        raise web.HTTPGone(text=BATCH_GONE)
    return Batch(poll, seed, count)


def _public_link(request: web.Request, poll: Any) -> str:
    return links.absolute(request, request.app.router["poll"].url_for(question_id=str(poll.id)))


def _code_link(public_link: str, code: str) -> str:
    """The link a code's QR code carries: the poll's form with the code filled in. A grouped
    code is digits, capitals and a dash, nothing a query needs to escape."""
    return f"{public_link}?code={codes.grouped(code)}"


async def codes_batch(request: web.Request) -> web.Response:
    """The batch just made: how many, and its downloads, while they last."""
    poll, seed, count = await _batch(request)
    pages = range(1, (count - 1) // CARDS_PER_PAGE + 2)
    context = {
        "request": request,
        "question": poll,
        "count": count,
        "csv_url": _batch_url(request, "codes_csv", count, seed),
        "cards_url": _batch_url(request, "codes_cards", count, seed),
        "card_pages": [(p, (p - 1) * CARDS_PER_PAGE + 1, min(p * CARDS_PER_PAGE, count)) for p in pages],
    }
    return aiohttp_jinja2.render_template("codes_batch.html", request, context)


def _csv(public_link: str, seed: bytes, count: int) -> str:
    made = codes.batch_codes(seed, count)
    rows = [["code", "link"], *([codes.grouped(c), _code_link(public_link, c)] for c in made)]
    return exports.csv_text(rows)


async def codes_csv(request: web.Request) -> web.Response:
    """`code,link`: a row per code of the batch, with the link that brings it to the poll."""
    poll, seed, count = await _batch(request)
    # 10,000 rows take some 40 ms to draw and write: off the loop, as the codes were made.
    body = await asyncio.to_thread(_csv, _public_link(request, poll), seed, count)
    return exports.attachment(poll, "voter-codes.csv", body, "text/csv")


def _cards(public_link: str, seed: bytes, start: int, count: int) -> list[tuple[str, str, Any]]:
    cards = []
    for code in codes.batch_codes(seed, count, start=start):
        link = _code_link(public_link, code)
        cards.append((codes.grouped(code), link, qr.drawn(link)))
    return cards


async def codes_cards(request: web.Request) -> web.Response:
    """A printable page of cards (?page=, CARDS_PER_PAGE each): the question, the poll's
    link, the code, and a QR code of the link that brings the code."""
    poll, seed, count = await _batch(request)
    pages = (count - 1) // CARDS_PER_PAGE + 1
    typed = request.query.get("page", "1")
    page = int(typed) if _NUMBER.fullmatch(typed) else 0
    if not 1 <= page <= pages:
        raise web.HTTPNotFound()
    start = (page - 1) * CARDS_PER_PAGE
    public_link = _public_link(request, poll)
    # About 4 ms a QR code: drawn in a thread, so the loop goes on serving meanwhile.
    cards = await asyncio.to_thread(_cards, public_link, seed, start, min(CARDS_PER_PAGE, count - start))
    context = {
        "request": request,
        "question": poll,
        "public_link": public_link,
        "cards": cards,
        "page": page,
        "pages": pages,
    }
    return aiohttp_jinja2.render_template("codes_cards.html", request, context)
