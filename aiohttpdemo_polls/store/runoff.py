"""The count of a ranked poll, a pure function from ballots to rounds that anyone can redo with a
pencil: instant runoff round by round, and who beats whom head to head.

Each round, every ballot counts for its highest-ranked choice still in the count. The winner is
the first choice with more than half of the ballots still counting. Otherwise the choice with the
fewest votes is eliminated, one choice per round (choices with no votes too, one at a time), and
its ballots move to their next choice still in the count, or are exhausted when none is left.

A tie for fewest votes is broken by one rule (TIE_RULE): of the tied choices, the one with the
fewest votes in the round before is eliminated, and so back round by round to round 2; then the
one with the fewest first preferences (round 1); then a draw, `random.Random(seed).choice` over
the still tied ids in ascending order, one generator for the whole count, the seed being the
poll's id: anyone can replay it.

When all choices still in the count tie (two choices with half each), the rule picks the one to
eliminate like any other tie, and the count goes on. With at least one ballot there is always a
winner; with none, the count is one round of zeros, no winner and no head-to-head winner.
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TIE_RULE = (
    "When choices tie for the fewest votes, the one with the fewest votes in the round before is "
    "eliminated, and so on back to round 2; then the one with the fewest first preferences; "
    "then one is drawn by lot, with the poll's number as the seed of the draw, so that anyone "
    "can replay it."
)
# Round.tie_break: which step of TIE_RULE decided.
EARLIER_ROUNDS, FIRST_PREFERENCES, DRAW = "earlier_rounds", "first_preferences", "draw"


@dataclass(frozen=True)
class Round:
    """One round: the votes of each choice still in the count, and who leaves it at its end."""

    votes: dict[int, int]  # continuing choice id -> ballots counting for it this round
    exhausted: int  # ballots with no continuing choice left (so far, cumulative)
    eliminated: tuple[int, ...]  # choice ids eliminated at the end of this round; () in the last
    transfers: dict[int | None, int]  # where the eliminated ballots went: choice id or None (exhausted)
    tie_break: str | None  # the step of TIE_RULE that broke a tie for elimination, if there was one
    tied: tuple[int, ...] = ()  # the choices tied for fewest votes, when tie_break is set


@dataclass(frozen=True)
class Count:
    """The whole count: its rounds, its winner, and the head-to-head table."""

    ballots: int  # ballots cast (with at least one choice ranked)
    choices: tuple[int, ...]
    rounds: tuple[Round, ...]
    winner: int | None  # first choice with more than half of the ballots still counting
    head_to_head: dict[tuple[int, int], int]  # (a, b) -> voters who rank a above b
    beats_all: int | None  # the choice that beats every other one head to head, if any
    seed: int = 0  # the seed of the draws (the poll's id)


def count(rankings: Mapping[tuple[int, ...], int], choices: Sequence[int], seed: int) -> Count:
    """Count ballots given as each distinct ranking (choice ids, best first) -> how many have it.

    An empty ranking is no ballot; a ranking naming a choice twice or one not in `choices` is a
    caller's bug (ValueError).
    """
    choices = tuple(choices)
    known = set(choices)
    ballots = 0
    for ranking, n in rankings.items():
        if not set(ranking) <= known or len(set(ranking)) != len(ranking):
            raise ValueError(f"not a ranking of {choices}: {ranking}")
        if ranking and n:
            ballots += n
    rounds = _rounds(rankings, choices, ballots, random.Random(seed))
    last = rounds[-1].votes
    leader = max(last, key=last.__getitem__, default=None)
    winner = leader if leader is not None and 2 * last[leader] > ballots - rounds[-1].exhausted else None
    table = _head_to_head(rankings, choices)
    beats_all = next(
        (a for a in choices if ballots and all(table[a, b] > table[b, a] for b in choices if b != a)),
        None,
    )
    return Count(ballots, choices, rounds, winner, table, beats_all, seed)


def _rounds(
    rankings: Mapping[tuple[int, ...], int], choices: tuple[int, ...], ballots: int, rng: random.Random
) -> tuple[Round, ...]:
    """Instant runoff: ballots kept in piles by the choice they count for; an eliminated choice's
    pile is dealt out to each ballot's next choice still in the count.
    """
    piles: dict[int, list[tuple[tuple[int, ...], int, int]]] = {c: [] for c in choices}
    votes = dict.fromkeys(choices, 0)
    for ranking, n in rankings.items():
        if ranking and n:
            piles[ranking[0]].append((ranking, n, 0))
            votes[ranking[0]] += n
    exhausted = 0
    history: list[dict[int, int]] = []
    rounds: list[Round] = []
    while True:
        history.append(dict(votes))
        counting = ballots - exhausted
        if not ballots or any(2 * v > counting for v in votes.values()) or len(votes) <= 1:
            rounds.append(Round(dict(votes), exhausted, (), {}, None))
            return tuple(rounds)
        loser, tie_break, tied = _fewest(history, rng)
        before = exhausted
        transfers: dict[int | None, int] = {}
        del votes[loser]
        for ranking, n, at in piles.pop(loser):
            nxt = next((i for i in range(at + 1, len(ranking)) if ranking[i] in votes), None)
            to = None if nxt is None else ranking[nxt]
            transfers[to] = transfers.get(to, 0) + n
            if to is None:
                exhausted += n
            else:
                votes[to] += n
                piles[to].append((ranking, n, nxt))
        rounds.append(Round(history[-1], before, (loser,), transfers, tie_break, tied))


def _fewest(history: list[dict[int, int]], rng: random.Random) -> tuple[int, str | None, tuple[int, ...]]:
    """The choice to eliminate after the last round of `history`, by TIE_RULE."""
    now = history[-1]
    least = min(now.values())
    tied = sorted(c for c, v in now.items() if v == least)
    if len(tied) == 1:
        return tied[0], None, ()
    left = tied
    for back in range(len(history) - 2, -1, -1):
        least = min(history[back][c] for c in left)
        left = [c for c in left if history[back][c] == least]
        if len(left) == 1:
            return left[0], (FIRST_PREFERENCES if back == 0 else EARLIER_ROUNDS), tuple(tied)
    return rng.choice(left), DRAW, tuple(tied)


def _head_to_head(
    rankings: Mapping[tuple[int, ...], int], choices: tuple[int, ...]
) -> dict[tuple[int, int], int]:
    """(a, b) -> ballots ranking a above b; a ranked choice is above every unranked one."""
    table = {(a, b): 0 for a in choices for b in choices if a != b}
    for ranking, n in rankings.items():
        above: set[int] = set()
        for a in ranking:
            above.add(a)
            for b in choices:
                if b not in above:
                    table[a, b] += n
    return table
