"""A ranked poll's count as its pages, the API, the maker's files and live results read it:
from the cache until the poll changes, else its rankings grouped in SQL and counted in a
thread, so that counting a big poll never holds up the event loop."""

import asyncio
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from aiohttp import web

from ..store import connections, ranked, runoff
from .cache import cache_key
from .database import engine_key


async def ranked_count(app: web.Application, question_id: int) -> runoff.Count:
    """The count of this published ranked poll.

    `app` is the site's application (`config.site(request)`): the cache and the pool are its.
    Loads for one poll at once are one load (the cache's), so a crowd costs one count."""

    async def load() -> tuple[runoff.Count, float]:
        async with connections.connection(app[engine_key]) as conn:
            choices, grouped = await ranked.grouped_rankings(conn, question_id)
        # Parsing and counting are CPU work: a poll of 100,000 ballots takes tens of ms.
        counted = await asyncio.to_thread(ranked.count_grouped, grouped, choices, question_id)
        return counted, math.inf  # until the poll changes: the cache hears of every change

    return await app[cache_key].get(("ranked", question_id), load)


class RoundView(NamedTuple):
    """One round as the round table shows it."""

    number: int
    exhausted: int  # ballots with no ranked choice left, so far
    counting: int  # ballots still counting in this round
    eliminated: list[str]
    transfers: list[tuple[str | None, int]]  # (choice text, or None: exhausted; ballots)
    tie_break: str | None  # runoff's step of the tie rule that decided, if there was a tie
    tied: list[str]  # the choices tied for the fewest votes, when there was a tie


class CountView(NamedTuple):
    """A count laid out for the round table and the head-to-head table."""

    ballots: int
    rounds: list[RoundView]
    # Choices in standing order: (id, text, votes in each round or None once out).
    rows: list[tuple[int, str, list[int | None]]]
    winner: str | None
    beats_all: str | None
    differs: bool  # the head-to-head winner is not the instant-runoff winner
    # Head to head, rows and columns in standing order: (text, [voters preferring it to
    # each column's choice, None on the diagonal], [whether it beats that choice]).
    head_to_head: list[tuple[str, list[int | None], list[bool]]]
    leader: str | None  # the winner, or while there is none the last round's first
    version: str  # live_version: the live socket's frames carry it, so pages know theirs is stale


async def count_context(
    app: web.Application, question: Any, choices: Sequence[Any], show_counts: bool
) -> dict:
    """What templates/_ranked_count.html needs: the count laid out, when this reader may see it."""
    view = None
    if show_counts:
        view = count_view(await ranked_count(app, question.id), {c.id: c.choice_text for c in choices})
    return {"question": question, "choices": choices, "show_counts": show_counts, "count": view}


def count_view(counted: runoff.Count, known: Mapping[int, str]) -> CountView:
    """What the pages show of a count; `known` names each choice id (one added since it was
    read is shown by its id until the page is made again)."""
    texts = {c: known.get(c, f"#{c}") for c in counted.choices}
    rounds = counted.rounds
    out_at: dict[int, int] = {}  # choice -> index of the round it was eliminated in
    for index, round_ in enumerate(rounds):
        for choice in round_.eliminated:
            out_at[choice] = index
    last = rounds[-1].votes if rounds else {}

    def standing(choice: int) -> tuple:
        if choice == counted.winner:
            return (0, 0, 0)
        if choice not in out_at:
            return (1, -last.get(choice, 0), counted.choices.index(choice))
        return (2, -out_at[choice], counted.choices.index(choice))

    order = sorted(counted.choices, key=standing)
    rows = [(c, texts[c], [r.votes.get(c) for r in rounds]) for c in order]
    views = [
        RoundView(
            number=i,
            exhausted=r.exhausted,
            counting=counted.ballots - r.exhausted,
            eliminated=[texts[c] for c in r.eliminated],
            transfers=[
                (None if to is None else texts[to], n) for to, n in _transfer_order(r.transfers, order)
            ],
            tie_break=r.tie_break,
            tied=[texts[c] for c in getattr(r, "tied", ())],
        )
        for i, r in enumerate(rounds, 1)
    ]
    pairs = counted.head_to_head
    head = [
        (
            texts[a],
            [None if a == b else pairs.get((a, b), 0) for b in order],
            [a != b and pairs.get((a, b), 0) > pairs.get((b, a), 0) for b in order],
        )
        for a in order
    ]
    leader = counted.winner
    if leader is None and last and counted.ballots:
        leader = max(last, key=lambda c: (last[c], -counted.choices.index(c)))
    return CountView(
        ballots=counted.ballots,
        rounds=views,
        rows=rows,
        winner=None if counted.winner is None else texts[counted.winner],
        beats_all=None if counted.beats_all is None else texts[counted.beats_all],
        differs=counted.beats_all is not None
        and counted.winner is not None
        and counted.beats_all != counted.winner,
        head_to_head=head,
        leader=None if leader is None else texts[leader],
        version=live_version(counted),
    )


def _transfer_order(
    transfers: Mapping[int | None, int], order: Sequence[int]
) -> list[tuple[int | None, int]]:
    """Where ballots went, in standing order, the exhausted last."""
    moved = [(c, transfers[c]) for c in order if transfers.get(c)]
    if transfers.get(None):
        moved.append((None, transfers[None]))
    return moved


def live_version(counted: runoff.Count) -> str:
    """A digest of everything the count's tables show: a live frame carries it, and a page
    whose own differs fetches the tables again."""
    summary = {
        "ballots": counted.ballots,
        "winner": counted.winner,
        "beats_all": counted.beats_all,
        "rounds": [[r.votes.get(c) for c in counted.choices] + [r.exhausted] for r in counted.rounds],
        "head_to_head": [
            counted.head_to_head.get((a, b), 0) for a in counted.choices for b in counted.choices
        ],
    }
    return hashlib.sha256(json.dumps(summary).encode()).hexdigest()[:16]


def count_document(counted: runoff.Count) -> dict[str, Any]:
    """A count as JSON (the API and results.json): rounds, winner and head to head, by choice id."""
    return {
        "ballots": counted.ballots,
        "winner": counted.winner,
        "beats_all": counted.beats_all,
        "rounds": [
            {
                "round": number,
                "votes": [{"choice": c, "votes": r.votes[c]} for c in counted.choices if c in r.votes],
                "exhausted": r.exhausted,
                "eliminated": list(r.eliminated),
                "transfers": [{"to": to, "ballots": n} for to, n in r.transfers.items()],
                "tie_break": r.tie_break,
            }
            for number, r in enumerate(counted.rounds, 1)
            if counted.ballots
        ],
        "head_to_head": [
            {"choice": a, "over": b, "voters": counted.head_to_head.get((a, b), 0)}
            for a in counted.choices
            for b in counted.choices
            if a != b
        ],
        "tie_rule": runoff.TIE_RULE,
        "seed": counted.seed,
    }
