"""Placeholder for the count (helper `runoff` writes the real one on its branch): instant
runoff round by round and the head-to-head table, with the interface the pages are built on."""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Round:
    votes: dict[int, int]
    exhausted: int
    eliminated: tuple[int, ...]
    transfers: dict[int | None, int]
    tie_break: str | None


@dataclass(frozen=True)
class Count:
    ballots: int
    choices: tuple[int, ...]
    rounds: tuple[Round, ...]
    winner: int | None
    head_to_head: dict[tuple[int, int], int]
    beats_all: int | None


def count(rankings: Mapping[tuple[int, ...], int], choices: Sequence[int], seed: int) -> Count:
    """Instant runoff: each round, the choice with the fewest votes goes, until one has more
    than half of the ballots still counting."""
    choices = tuple(choices)
    ballots = sum(rankings.values())
    rng = random.Random(seed)
    left = set(choices)
    history: list[dict[int, int]] = []
    rounds: list[Round] = []
    winner = None
    firsts = {c: 0 for c in choices}
    for ranking, n in rankings.items():
        if ranking:
            firsts[ranking[0]] = firsts.get(ranking[0], 0) + n
    while left:
        votes = {c: 0 for c in choices if c in left}
        exhausted = 0
        for ranking, n in rankings.items():
            top = next((c for c in ranking if c in left), None)
            if top is None:
                exhausted += n
            else:
                votes[top] += n
        history.append(votes)
        counting = ballots - exhausted
        best = max(votes.values())
        if (counting and best * 2 > counting) or len(left) == 1:
            winner = max(votes, key=lambda c: (votes[c], -choices.index(c))) if counting else None
            rounds.append(Round(votes, exhausted, (), {}, None))
            break
        fewest = min(votes.values())
        tied = [c for c in votes if votes[c] == fewest]
        tie_break = None
        if len(tied) > 1:
            for earlier in reversed(history[:-1]):
                low = min(earlier.get(c, 0) for c in tied)
                tied = [c for c in tied if earlier.get(c, 0) == low]
            if len(tied) > 1:
                low = min(firsts[c] for c in tied)
                tied = [c for c in tied if firsts[c] == low]
            tie_break = "draw" if len(tied) > 1 else "earlier rounds"
            if len(tied) > 1:
                tied = [rng.choice(sorted(tied))]
        out = tied[0]
        left.discard(out)
        transfers: dict[int | None, int] = {}
        for ranking, n in rankings.items():
            if next((c for c in ranking if c in left | {out}), None) == out:
                to = next((c for c in ranking if c in left), None)
                transfers[to] = transfers.get(to, 0) + n
        rounds.append(Round(votes, exhausted, (out,), transfers, tie_break))
    head: dict[tuple[int, int], int] = {(a, b): 0 for a in choices for b in choices if a != b}
    for ranking, n in rankings.items():
        place = {c: i for i, c in enumerate(ranking)}
        for a in choices:
            for b in choices:
                if a != b and a in place and (b not in place or place[a] < place[b]):
                    head[a, b] += n
    beats_all = next((a for a in choices if all(head[a, b] > head[b, a] for b in choices if b != a)), None)
    return Count(ballots, choices, tuple(rounds), winner, head, beats_all)
