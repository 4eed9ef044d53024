"""The count of a ranked poll, a pure function from ballots to rounds that anyone can redo with a
pencil: instant runoff round by round, and who beats whom head to head.

Each round, every ballot counts for its highest-ranked choice still in the count. The winner is
the first choice with more than half of the ballots still counting. Otherwise ONE choice, the one
with the fewest votes, is eliminated (choices with no votes too, one a round), and its ballots
move to their next choice still in the count, or are exhausted when none is left.

A tie for the fewest votes is broken by one rule, TIE_RULE: of the tied choices, the one with the
fewest votes in the round before is eliminated, and so on back to round 2; then the one with the
fewest first preferences (round 1); then a draw: `random.Random(seed).choice` over the still tied
ids in ascending order, one generator for the whole count, round after round; the seed is the
poll's id, so anyone can replay it.

When every choice still in the count ties (two choices with half of the ballots each), TIE_RULE
picks the one to eliminate like any other tie, and the count goes on. With at least one ballot
there is always a winner; with none, the count is one round of zeros and has no winner.
"""

import random
import sys
from array import array
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

TIE_RULE = (
    "When choices tie for the fewest votes, the one with the fewest votes in the round before is "
    "eliminated, and so on back to round 2; then the one with the fewest first preferences; then "
    "one is drawn by lot, with the poll's number as the seed of the draw, so that anyone can "
    "replay it."
)
# Round.tie_break: the step of TIE_RULE that decided.
EARLIER_ROUNDS, FIRST_PREFERENCES, DRAW = "earlier_rounds", "first_preferences", "draw"
# A ballot's choices are kept as one byte each (below), so a count takes this many at most.
MAX_CHOICES = 127
# Rankings turned into bytes in one call: about a millisecond's work.
PIECE = 4096


@dataclass(frozen=True)
class Round:
    """One round: the votes of each choice still in the count, and who leaves it at its end."""

    votes: dict[int, int]  # continuing choice id -> ballots counting for it this round
    exhausted: int  # ballots with no continuing choice left (so far, cumulative)
    eliminated: tuple[int, ...]  # choice ids eliminated at the end of this round; () in the last
    # Where the eliminated choice's ballots went in the next round: choice id -> ballots, None ->
    # exhausted; only where some went, {} in the last round.
    transfers: dict[int | None, int]
    tie_break: str | None  # the step of TIE_RULE that broke a tie for elimination, if there was one
    tied: tuple[int, ...] = ()  # the choices that tied for the fewest votes, when tie_break is set


@dataclass(frozen=True)
class Count:
    """The whole count: its rounds, its winner, and the head-to-head table."""

    ballots: int  # ballots cast (with at least one choice ranked)
    choices: tuple[int, ...]
    rounds: tuple[Round, ...]
    winner: int | None  # first choice with more than half of the ballots still counting
    head_to_head: dict[tuple[int, int], int]  # (a, b) -> voters who rank a above b
    beats_all: int | None  # the choice that beats every other one head to head (Condorcet winner)
    seed: int = 0  # the seed of the draws: the poll's id


def count(rankings: Mapping[tuple[int, ...], int], choices: Sequence[int], seed: int) -> Count:
    """Count ballots given as each distinct ranking (choice ids, best first) -> how many have it.

    An empty ranking is no ballot; a ranked choice is above every unranked one. A ranking naming a
    choice twice or one not in `choices`, or a negative number of ballots, is a ValueError.
    """
    choices = tuple(choices)
    table = _Ballots(rankings, choices)
    rounds = _rounds(table, choices, random.Random(seed))
    last = rounds[-1]
    leader = max(last.votes, key=last.votes.__getitem__, default=None)
    counting = table.ballots - last.exhausted
    winner = leader if leader is not None and 2 * last.votes[leader] > counting else None
    head_to_head = _head_to_head(table, choices)
    beats_all = next(
        (
            a
            for a in choices
            if table.ballots and all(head_to_head[a, b] > head_to_head[b, a] for b in choices if b != a)
        ),
        None,
    )
    return Count(table.ballots, choices, rounds, winner, head_to_head, beats_all, seed)


def _rounds(table: "_Ballots", choices: tuple[int, ...], rng: random.Random) -> tuple[Round, ...]:
    """Instant runoff, one elimination a round, until a choice has more than half."""
    continuing = list(range(len(choices)))
    history: list[list[int]] = []  # votes by choice index, one list a round
    rounds: list[Round] = []
    votes = table.votes(continuing)
    while True:
        history.append([votes.get(c, 0) for c in range(len(choices))])
        exhausted = table.ballots - sum(votes.values())
        shown = {choices[c]: v for c, v in votes.items()}
        if (
            table.ballots == 0
            or len(continuing) <= 1
            or any(2 * v > table.ballots - exhausted for v in shown.values())
        ):
            rounds.append(Round(shown, exhausted, (), {}, None))
            return tuple(rounds)
        loser, tie_break, tied = _fewest(continuing, history, choices, rng)
        continuing.remove(loser)
        after = table.votes(continuing)
        transfers: dict[int | None, int] = {
            choices[c]: after[c] - votes[c] for c in continuing if after[c] > votes[c]
        }
        if table.ballots - sum(after.values()) > exhausted:
            transfers[None] = table.ballots - sum(after.values()) - exhausted
        tied_ids = tuple(sorted(choices[c] for c in tied))
        rounds.append(Round(shown, exhausted, (choices[loser],), transfers, tie_break, tied_ids))
        votes = after


def _fewest(
    continuing: list[int], history: list[list[int]], choices: tuple[int, ...], rng: random.Random
) -> tuple[int, str | None, list[int]]:
    """The choice (index) to eliminate after the last round of `history`, by TIE_RULE, how a
    tie was broken and who tied."""
    now = history[-1]
    least = min(now[c] for c in continuing)
    tied = [c for c in continuing if now[c] == least]
    if len(tied) == 1:
        return tied[0], None, []
    left = tied
    for back in range(len(history) - 2, -1, -1):
        least = min(history[back][c] for c in left)
        left = [c for c in left if history[back][c] == least]
        if len(left) == 1:
            return left[0], (FIRST_PREFERENCES if back == 0 else EARLIER_ROUNDS), tied
    drawn = rng.choice(sorted(choices[c] for c in left))
    return choices.index(drawn), DRAW, tied


def _head_to_head(table: "_Ballots", choices: tuple[int, ...]) -> dict[tuple[int, int], int]:
    """(a, b) -> ballots that rank a above b."""
    return {
        (choices[a], choices[b]): table.weight(table.above(a, b))
        for a in range(len(choices))
        for b in range(len(choices))
        if a != b
    }


class _Ballots:
    """The distinct rankings as big integers, so that a round or a pair of choices is a few
    operations on them, whatever the number of ballots.

    Each distinct ranking has a slot, one byte of every integer. `scores[c]` holds, slot by slot,
    how high the ranking places choice c: the longest ranking's length for a 1st choice, one less
    for a 2nd..., 0 when unranked. A mask has the top bit of a slot set for the rankings it
    holds, and `planes[p]` holds those whose number of ballots has bit p set: the ballots of a
    mask are sum(popcount(mask & planes[p]) << p).
    """

    def __init__(self, rankings: Mapping[tuple[int, ...], int], choices: tuple[int, ...]) -> None:
        if len(set(choices)) != len(choices) or len(choices) > MAX_CHOICES:
            raise ValueError(f"choices must be at most {MAX_CHOICES} distinct ids: {choices}")
        counts = list(rankings.values())
        if counts and not 0 <= min(counts) <= max(counts) < 2**64:
            raise ValueError("a ranking has from 0 to 2**64 - 1 ballots")
        keys = list(rankings)
        lengths = list(map(len, keys))
        # Short rankings first: many ballots share them, so the high planes are short integers.
        order = sorted(range(len(keys)), key=lengths.__getitem__)
        keys, counts = list(map(keys.__getitem__, order)), list(map(counts.__getitem__, order))
        lengths.sort()
        self.ballots = sum(counts) - sum(counts[: bisect_right(lengths, 0)])
        self.ones = int.from_bytes(b"\x01" * len(keys), "little")
        self.all = self.ones << 7
        self.scores = _scores(_places(keys, lengths, choices), choices, self.ones)
        self.planes = _planes(counts, self.all)

    def weight(self, mask: int) -> int:
        """The ballots of the rankings in `mask`."""
        return sum((mask & plane).bit_count() << p for p, plane in enumerate(self.planes))

    def above(self, a: int, b: int) -> int:
        """The rankings that place a above b (b later, or not at all)."""
        # Slot by slot, 128 + score(a) - score(b) - 1 keeps its top bit where score(a) > score(b)
        # and borrows from no other slot, as scores are below 128.
        return ((self.scores[a] | self.all) - self.scores[b] - self.ones) & self.all

    def votes(self, continuing: list[int]) -> dict[int, int]:
        """Ballots counting for each continuing choice: the rankings that place it highest of the
        continuing choices."""
        best = self.ones  # slot by slot, the highest score of a continuing choice, at least 1
        for c in continuing:
            # max(score, best) slot by slot: where score >= best, take its low 7 bits.
            score = self.scores[c]
            higher = ((score | self.all) - best) & self.all
            best ^= (score ^ best) & (higher - (higher >> 7))
        return {c: self.weight(((self.scores[c] | self.all) - best) & self.all) for c in continuing}


def _places(keys: list[tuple[int, ...]], lengths: list[int], choices: tuple[int, ...]) -> list[int]:
    """For each place (1st, 2nd...), one byte a slot: the index of the choice the ranking puts
    there, or MAX_CHOICES past its end. The rankings come sorted by length."""
    index = {c: i for i, c in enumerate(choices)}
    try:
        # In pieces: one call on all the rankings would hold the interpreter lock throughout
        # (45 ms for 100,000 rankings of 20 choices), keeping other threads from running.
        flat = b"".join(
            bytes(map(index.__getitem__, chain.from_iterable(keys[at : at + PIECE])))
            for at in range(0, len(keys), PIECE)
        )
    except KeyError as unknown:
        raise ValueError(f"a ranking names {unknown}, which is not one of {choices}") from None
    places = [bytearray() for _ in range(max(lengths, default=0))]
    start = offset = 0
    while start < len(keys):  # one length at a time: its rankings' i-th choices are flat[i::length]
        length = lengths[start]
        end = bisect_right(lengths, length, start)
        block = flat[offset : offset + length * (end - start)]
        for i, place in enumerate(places):
            place += block[i::length] if i < length else bytes([MAX_CHOICES]) * (end - start)
        offset += length * (end - start)
        start = end
    return [int.from_bytes(place, "little") for place in places]


def _scores(places: list[int], choices: tuple[int, ...], ones: int) -> list[int]:
    """For each choice, slot by slot, len(places) - i where the ranking puts it in place i, 0
    where it does not rank it."""
    top, below_top = ones << 7, ones * 0x7F
    scores = []
    for c in range(len(choices)):
        everywhere, seen = ones * c, 0
        bits = [0] * len(places).bit_length()  # bit q of the score, at the top of the slot
        for i, held in enumerate(places):
            # A slot's byte equals c where XOR leaves 0: adding 0x7F then sets no top bit.
            mask = top ^ (((held ^ everywhere) + below_top) & top)
            if seen & mask:
                raise ValueError(f"a ranking names {choices[c]} twice")
            seen |= mask
            for q in range(len(bits)):
                if (len(places) - i) >> q & 1:
                    bits[q] |= mask
        scores.append(sum(mask >> (7 - q) for q, mask in enumerate(bits)))
    return scores


def _planes(counts: list[int], top: int) -> list[int]:
    """planes[p]: the top bit of each slot whose number of ballots has bit p set."""
    most = max(counts, default=0)
    if most < 256:
        wide, width = bytes(counts), 1
    else:  # 8 bytes a slot, least significant first; byte d of each makes planes 8d to 8d + 7
        numbers = array("Q", counts)
        if sys.byteorder == "big":
            numbers.byteswap()
        wide, width = numbers.tobytes(), 8
    digits = [int.from_bytes(wide[d::width], "little") for d in range((most.bit_length() + 7) // 8)]
    # Shifting left by 7 - p % 8 brings bit p % 8 of each byte to the top of its slot.
    return [(digits[p // 8] << (7 - p % 8)) & top for p in range(most.bit_length())]
