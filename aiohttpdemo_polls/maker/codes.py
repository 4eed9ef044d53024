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
from typing import Any

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
CARDS_PER_PAGE = 500  # about 2 s of QR codes, drawn off the event loop
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


def _hashes(key: bytes, question_id: int, made: list[str]) -> list[bytes]:
    return [codes.code_hash(key, question_id, code) for code in made]


async def make_codes(request: web.Request) -> web.Response:
    """Make 1 to 10,000 codes (the form's `count`), then on to the batch's page (303); the
    manage page again (400) naming the field when the count is not one."""
    form = await read_form(request)
    count = _count(form.get("count"))
    key = site(request)[votes_key].code_key
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.poll_or_404(request, conn)
        if count is None:
            typed = form.get("count")
            return await manage.codes_refused(
                request, conn, poll, typed if isinstance(typed, str) else "", BAD_COUNT
            )
        while True:  # another batch only if one of its codes was the poll's already (~never)
            seed = codes.new_seed()
            # 10,000 codes take some 40 ms of hashing: off the loop, which serves votes meanwhile.
            hashes = await asyncio.to_thread(_hashes, key, poll.id, codes.batch_codes(seed, count))
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


async def _batch(request: web.Request) -> tuple[Any, list[str]]:
    """The poll and the batch's codes from its address; 404 for one not made for this poll,
    410 once it is older than BATCH_TIME."""
    count = int(request.match_info["count"])
    if not 1 <= count <= codes.MAX_CODES:
        raise web.HTTPNotFound()
    made = codes.batch_codes(_seed(request.match_info["seed"]), count)
    key = site(request)[votes_key].code_key
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.poll_or_404(request, conn)
        first, last = (codes.code_hash(key, poll.id, code) for code in (made[0], made[-1]))
        age = await codes.batch_age(conn, poll.id, first, last)
    if age is None:
        raise web.HTTPNotFound()
    if age > BATCH_TIME:
        raise web.HTTPGone(text=BATCH_GONE)
    return poll, made


def _voting_link(request: web.Request, poll: Any, code: str | None = None) -> str:
    """The poll's public link; with a code, the link its QR code carries (the form filled in)."""
    url = request.app.router["poll"].url_for(question_id=str(poll.id))
    return links.absolute(request, url.with_query(code=codes.grouped(code)) if code else url)


async def codes_batch(request: web.Request) -> web.Response:
    """The batch just made: how many, and its downloads, while they last."""
    poll, made = await _batch(request)
    count, seed = len(made), _seed(request.match_info["seed"])
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


async def codes_csv(request: web.Request) -> web.Response:
    """`code,link`: a row per code of the batch, with the link that brings it to the poll."""
    poll, made = await _batch(request)
    rows = [["code", "link"], *([codes.grouped(c), _voting_link(request, poll, c)] for c in made)]
    return exports.attachment(poll, "voter-codes.csv", exports.csv_text(rows), "text/csv")


def _cards(links_by_code: list[tuple[str, str]]) -> list[tuple[str, str, Any]]:
    return [(codes.grouped(code), link, qr.drawn(link)) for code, link in links_by_code]


async def codes_cards(request: web.Request) -> web.Response:
    """A printable page of cards (?page=, CARDS_PER_PAGE each): the question, the poll's
    link, the code, and a QR code of the link that brings the code."""
    poll, made = await _batch(request)
    pages = (len(made) - 1) // CARDS_PER_PAGE + 1
    typed = request.query.get("page", "1")
    page = int(typed) if _NUMBER.fullmatch(typed) else 0
    if not 1 <= page <= pages:
        raise web.HTTPNotFound()
    chosen = made[(page - 1) * CARDS_PER_PAGE : page * CARDS_PER_PAGE]
    # About 4 ms a QR code: drawn in a thread, so the loop goes on serving meanwhile.
    cards = await asyncio.to_thread(_cards, [(c, _voting_link(request, poll, c)) for c in chosen])
    context = {
        "request": request,
        "question": poll,
        "public_link": _voting_link(request, poll),
        "cards": cards,
        "page": page,
        "pages": pages,
    }
    return aiohttp_jinja2.render_template("codes_cards.html", request, context)
