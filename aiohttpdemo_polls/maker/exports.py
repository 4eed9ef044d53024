"""The maker's results as files (results.csv, results.json, ballots.csv), behind the manage
page's token (410 once the operator hid the poll); cells a spreadsheet would run as a formula
are made inert. A ranked poll's files give its count round by round, and each ballot's ranking
in order.
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
from ..store import dates as store_dates
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


def attachment(poll: Any, what: str, body: str, content_type: str) -> web.Response:
    response = web.Response(text=body, content_type=content_type, charset="utf-8")
    response.headers["Content-Disposition"] = content_disposition(poll.question_text, poll.id, what)
    return response


def csv_text(rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerows([[inert(cell) for cell in row] for row in rows])
    return out.getvalue()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _no_counts(choices: list, rows: list[store_dates.Participant]) -> dict[int, int]:
    return {c.id: sum(1 for r in rows if r.answers.get(c.id) == store_dates.NO) for c in choices}


async def _date_results(request: web.Request, conn: Any, poll: Any, choices: list) -> list[list[object]]:
    """A date poll's `option,yes,if_need_be,no`: an option per row, as psql names it."""
    no = _no_counts(choices, await store_dates.participants(conn, poll.id))
    return [
        ["option", "yes", "if_need_be", "no"],
        *([c.choice_text, c.votes, c.if_need_be, no[c.id]] for c in choices),
    ]


async def _date_ballots(request: web.Request, conn: Any, poll: Any) -> list[list[object]]:
    """A date poll's `participant,option,answer`, a row per answer, participants in the order
    they came; where only the maker sees names, not even the files carry them."""
    async with conn.begin(isolation_level="REPEATABLE READ", readonly=True):  # one snapshot
        texts = {c.id: c.choice_text for c in await polls.choices(conn, poll.id)}
        rows = await store_dates.participants(conn, poll.id)
    table: list[list[object]] = [["participant", "option", "answer"]]
    for number, row in enumerate(rows, 1):
        who = f"{PARTICIPANT} {number}" if poll.names_hidden else row.name
        table += ([who, texts[c], answer] for c, answer in row.answers.items() if c in texts)
    return table


async def _ranked_results(request: web.Request, conn: Any, poll: Any, choices: list) -> list[list[object]]:
    """A ranked poll's rounds: `choice,round 1,round 2,…` (empty once out), then the exhausted
    and the eliminated."""
    view = count_view(await ranked_count(site(request), poll.id), {c.id: c.choice_text for c in choices})
    rounds = view.rounds if view.ballots else []
    return [
        ["choice", *(f"round {r.number}" for r in rounds)],
        *([text, *("" if v is None else v for v in votes[: len(rounds)])] for _, text, votes in view.rows),
        ["exhausted", *(r.exhausted for r in rounds)],
        ["eliminated", *("; ".join(r.eliminated) for r in rounds)],
    ]


async def _ranked_ballots(request: web.Request, conn: Any, poll: Any) -> list[list[object]]:
    """A ranked poll's `ballot,cast_at,rank 1,rank 2,…`, a row per ballot, its ranking in order."""
    places = len(await polls.choices(conn, poll.id))
    ballots = await store_exports.ballots(conn, poll.id)
    table: list[list[object]] = [["ballot", "cast_at", *(f"rank {n}" for n in range(1, places + 1))]]
    table += ([number, _iso(cast_at), *ranking] for number, (cast_at, ranking) in enumerate(ballots, 1))
    return table


# The files of polls of a kind of their own: kind -> (results.csv's rows, ballots.csv's).
KIND_FILES = {
    store_dates.KIND: (_date_results, _date_ballots),
    "ranked": (_ranked_results, _ranked_ballots),
}
PARTICIPANT = "Participant"


async def results_csv(request: web.Request) -> web.Response:
    """`choice,votes,percent`, a row per choice in the poll's order; a kind of its own has its
    table (KIND_FILES: a date poll's `option,yes,if_need_be,no`, a ranked poll's rounds)."""
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.exportable(request, conn)
        choices = await polls.choices(conn, poll.id)
        if poll.kind in KIND_FILES:
            rows = await KIND_FILES[poll.kind][0](request, conn, poll, choices)
        else:
            rows = [["choice", "votes", "percent"], *([c.choice_text, c.votes, c.percent] for c in choices)]
    return attachment(poll, "results.csv", csv_text(rows), "text/csv")


async def results_json(request: web.Request) -> web.Response:
    """The question, its dates, whether it is closed, each choice's count and share, the total."""
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.exportable(request, conn)
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
            | (_date_option(c) if poll.kind == store_dates.KIND else {})
            for c in choices
        ],
        "total": sum(c.votes for c in choices),
        "ballots": poll.ballots,
        "kind": poll.kind,
    }
    if poll.kind == store_dates.KIND:
        document |= {"timezone": poll.timezone, "settled_option": poll.settled_choice_id}
    if poll.kind == "ranked":  # `votes` above: ballots that rank the choice at all
        document["count"] = count_document(await ranked_count(site(request), poll.id))
    body = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    return attachment(poll, "results.json", body, "application/json")


def _date_option(c: Any) -> dict[str, Any]:
    """A date poll's option: its day, or start and end (RFC 3339, UTC); `votes` is its yes."""
    when = (
        {"date": c.day.isoformat()} if c.day else {"starts_at": _iso(c.starts_at), "ends_at": _iso(c.ends_at)}
    )
    return {**when, "if_need_be": c.if_need_be}


async def ballots_csv(request: web.Request) -> web.Response:
    """`ballot,cast_at,choice`: a row per chosen choice, ballots numbered in the order cast; a
    kind of its own has its table (KIND_FILES)."""
    async with connections.connection(site(request)[engine_key]) as conn:
        poll = await manage.exportable(request, conn)
        if poll.kind in KIND_FILES:
            rows = await KIND_FILES[poll.kind][1](request, conn, poll)
            return attachment(poll, "ballots.csv", csv_text(rows), "text/csv")
        ballots = await store_exports.ballots(conn, poll.id)
    table = [["ballot", "cast_at", "choice"]]
    for number, (cast_at, chosen) in enumerate(ballots, 1):
        table += ([number, _iso(cast_at), text] for text in chosen)
    return attachment(poll, "ballots.csv", csv_text(table), "text/csv")
