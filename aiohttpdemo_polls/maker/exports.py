"""The maker's results as files (results.csv, results.json, ballots.csv), behind the manage
page's token; cells a spreadsheet would run as a formula are made inert. A ranked poll's
files give its count round by round, and each ballot's ranking in order.
"""

import csv
import io
import json
import re
import unicodedata
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..store import connections, polls
from ..store import exports as store_exports
from ..web.config import site
from ..web.database import engine_key
from ..web.ranked import count_document, count_view, ranked_count
from . import manage

# A spreadsheet reads a cell starting with one of these as a formula (or the start of one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NOT_WORD = re.compile(r"[\W_]+")
SLUG_MAX = 60


def inert(cell: object) -> object:
    """The cell as text a spreadsheet shows as typed: a leading `'` before a formula start."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def _slug(text: str) -> str:
    return _NOT_WORD.sub("-", text.lower()).strip("-")[:SLUG_MAX].strip("-")


def content_disposition(question_text: str, question_id: int, what: str) -> str:
    """`attachment` named after the poll: an ASCII `filename` for every client, and the
    question as written in `filename*` (RFC 6266/5987) when it is not plain ASCII."""
    written = _slug(unicodedata.normalize("NFKC", question_text))
    plain = _slug(unicodedata.normalize("NFKD", question_text).encode("ascii", "ignore").decode())
    name = f"{plain or 'poll'}-{question_id}-{what}"
    header = f'attachment; filename="{name}"'
    if written and written != plain:
        header += f"; filename*=UTF-8''{quote(f'{written}-{question_id}-{what}', safe='')}"
    return header


def _file(poll: Any, what: str, body: str, content_type: str) -> web.Response:
    response = web.Response(text=body, content_type=content_type, charset="utf-8")
    response.headers["Content-Disposition"] = content_disposition(poll.question_text, poll.id, what)
    return response


def _csv(rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerows([[inert(cell) for cell in row] for row in rows])
    return out.getvalue()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def results_csv(request: web.Request) -> web.Response:
    """`choice,votes,percent`, a row per choice in the poll's order; for a ranked poll, its
    rounds: `choice,round 1,round 2,…` (empty once out), then the exhausted and the eliminated."""
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.poll_or_404(request, conn)
        choices = await polls.choices(conn, poll.id)
    if poll.kind == "ranked":
        rows = await _rounds_table(request, poll.id, choices)
    else:
        rows = [["choice", "votes", "percent"], *([c.choice_text, c.votes, c.percent] for c in choices)]
    return _file(poll, "results.csv", _csv(rows), "text/csv")


async def _rounds_table(request: web.Request, question_id: int, choices: list) -> list[list[object]]:
    view = count_view(await ranked_count(site(request), question_id), {c.id: c.choice_text for c in choices})
    rounds = view.rounds if view.ballots else []
    return [
        ["choice", *(f"round {r.number}" for r in rounds)],
        *([text, *("" if v is None else v for v in votes[: len(rounds)])] for _, text, votes in view.rows),
        ["exhausted", *(r.exhausted for r in rounds)],
        ["eliminated", *("; ".join(r.eliminated) for r in rounds)],
    ]


async def results_json(request: web.Request) -> web.Response:
    """The question, its dates, whether it is closed, each choice's count and share, the total."""
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.poll_or_404(request, conn)
        choices = await polls.choices(conn, poll.id)
    document = {
        "id": poll.id,
        "question": poll.question_text,
        "published_at": _iso(poll.pub_date),
        "closes_at": _iso(poll.closes_at),
        "closed_at": _iso(poll.closed_at),
        "closed": poll.closed,
        "multiple": poll.multiple,
        "choices": [
            {"id": c.id, "choice": c.choice_text, "votes": c.votes, "percent": float(c.percent)}
            for c in choices
        ],
        "total": sum(c.votes for c in choices),
        "ballots": poll.ballots,
        "kind": poll.kind,
    }
    if poll.kind == "ranked":  # `votes` above: ballots that rank the choice at all
        document["count"] = count_document(await ranked_count(site(request), poll.id))
    body = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    return _file(poll, "results.json", body, "application/json")


async def ballots_csv(request: web.Request) -> web.Response:
    """`ballot,cast_at,choice`: a row per chosen choice, ballots numbered in the order cast.
    A ranked poll's: `ballot,cast_at,rank 1,rank 2,…`, a row per ballot, its ranking in order."""
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.poll_or_404(request, conn)
        ballots = await store_exports.ballots(conn, poll.id)
        places = len(await polls.choices(conn, poll.id)) if poll.kind == "ranked" else 0
    if places:
        table = [["ballot", "cast_at", *(f"rank {n}" for n in range(1, places + 1))]]
        table += ([number, _iso(cast_at), *ranking] for number, (cast_at, ranking) in enumerate(ballots, 1))
        return _file(poll, "ballots.csv", _csv(table), "text/csv")
    table = [["ballot", "cast_at", "choice"]]
    for number, (cast_at, chosen) in enumerate(ballots, 1):
        table += ([number, _iso(cast_at), text] for text in chosen)
    return _file(poll, "ballots.csv", _csv(table), "text/csv")
