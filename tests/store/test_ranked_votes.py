"""Rankings go through the vote batcher (votes.py) as ballots do: one per voter per poll,
each place stored on its `vote` row, changes and locks as for other polls, and every
ranking answered as counted is the one stored, however many race."""

import asyncio
import random
import secrets

import aiopg.sa
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.store import ranked, schema
from aiohttpdemo_polls.store.changes import Changes
from aiohttpdemo_polls.store.votes import VoteBatcher, VoteOutcome

Outcome = VoteOutcome
SHARED = (Outcome.COUNTED, Outcome.CHANGED)


def voter() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture
async def engine(database_url):
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=6) as engine:
        yield engine


@pytest.fixture
def batcher(engine, database_url) -> VoteBatcher:
    return VoteBatcher(engine, Changes(database_url))


def stored_rankings(sync_engine, question_id: int) -> dict[str, list[tuple[int, int]]]:
    """Each voter's (rank, choice) rows, in rank order."""
    found: dict[str, list[tuple[int, int]]] = {}
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.vote.c.voter, schema.vote.c.rank, schema.vote.c.choice_id)
            .where(schema.vote.c.question_id == question_id)
            .order_by(schema.vote.c.voter, schema.vote.c.rank)
        ).all()
    for row in rows:
        found.setdefault(row.voter, []).append((row.rank, row.choice_id))
    return found


async def test_a_ranking_is_stored_place_by_place_and_counted_once(
    batcher, make_question, sync_engine, votes_of, vote_rows_match_counters
):
    poll = make_question(choices=("A", "B", "C", "D"), kind="ranked")
    a, b, c, d = poll["choices"]
    me = voter()
    assert await batcher.cast_ranking(poll["id"], [c, a, d], me) is Outcome.COUNTED
    assert stored_rankings(sync_engine, poll["id"]) == {me: [(1, c), (2, a), (3, d)]}
    assert votes_of(poll["id"]) == {a: 1, b: 0, c: 1, d: 1}  # a counter: ballots ranking it
    assert await batcher.cast_ranking(poll["id"], [c, a, d], me) is Outcome.ALREADY_VOTED
    assert vote_rows_match_counters()


async def test_reordering_the_same_choices_is_a_change(
    batcher, make_question, sync_engine, votes_of, vote_rows_match_counters
):
    poll = make_question(choices=("A", "B", "C"), kind="ranked")
    a, b, c = poll["choices"]
    me = voter()
    await batcher.cast_ranking(poll["id"], [a, b, c], me)
    assert await batcher.cast_ranking(poll["id"], [c, b, a], me) is Outcome.CHANGED
    assert stored_rankings(sync_engine, poll["id"]) == {me: [(1, c), (2, b), (3, a)]}
    assert await batcher.cast_ranking(poll["id"], [b], me) is Outcome.CHANGED
    assert stored_rankings(sync_engine, poll["id"]) == {me: [(1, b)]}
    assert votes_of(poll["id"]) == {a: 0, b: 1, c: 0}
    assert vote_rows_match_counters()


async def test_a_locked_ranked_poll_keeps_the_first_ranking(batcher, make_question, sync_engine):
    poll = make_question(choices=("A", "B", "C"), kind="ranked", lock_votes=True)
    a, b, _ = poll["choices"]
    me = voter()
    await batcher.cast_ranking(poll["id"], [a, b], me)
    assert await batcher.cast_ranking(poll["id"], [b, a], me) is Outcome.ALREADY_VOTED
    assert stored_rankings(sync_engine, poll["id"]) == {me: [(1, a), (2, b)]}


async def test_rankings_and_ballots_go_only_to_their_own_kind_of_poll(batcher, make_question, votes_of):
    ranked_poll = make_question(choices=("A", "B", "C"), kind="ranked")
    plain = make_question(choices=("Yes", "No"), multiple=True)
    assert (
        await batcher.cast(ranked_poll["id"], ranked_poll["choices"][:1], voter()) is Outcome.INVALID_CHOICE
    )
    assert await batcher.cast_ranking(plain["id"], plain["choices"], voter()) is Outcome.INVALID_CHOICE
    a, b, _ = ranked_poll["choices"]
    assert await batcher.cast_ranking(ranked_poll["id"], [a, b, a], voter()) is Outcome.INVALID_CHOICE
    assert await batcher.cast_ranking(ranked_poll["id"], [a, plain["choices"][0]], voter()) is (
        Outcome.INVALID_CHOICE
    )
    assert sum(votes_of(ranked_poll["id"]).values()) == sum(votes_of(plain["id"]).values()) == 0


async def test_rankings_racing_from_many_voters_store_exactly_what_was_answered(
    batcher, make_question, sync_engine, vote_rows_match_counters
):
    poll = make_question(choices=("A", "B", "C", "D", "E"), kind="ranked")
    choices = poll["choices"]
    rng = random.Random(23)
    voters = [voter() for _ in range(60)]
    sends = []
    for _ in range(5):  # each voter sends five rankings at once: first ballots and changes race
        for who in voters:
            ranking = rng.sample(choices, rng.randint(1, len(choices)))
            sends.append((who, ranking))
    rng.shuffle(sends)
    outcomes = await asyncio.gather(*(batcher.cast_ranking(poll["id"], r, who) for who, r in sends))
    answered: dict[str, list[list[int]]] = {}
    for (who, ranking), outcome in zip(sends, outcomes, strict=True):
        assert outcome in (*SHARED, Outcome.ALREADY_VOTED)
        if outcome in SHARED:
            answered.setdefault(who, []).append(ranking)
    assert sum(o is Outcome.COUNTED for o in outcomes) == len(voters)
    stored = stored_rankings(sync_engine, poll["id"])
    assert set(stored) == set(voters)
    for who, rows in stored.items():
        assert [rank for rank, _ in rows] == list(range(1, len(rows) + 1))
        # What is stored is a ranking this voter was told was counted (the last one committed).
        assert [choice for _, choice in rows] in answered[who]
    assert vote_rows_match_counters()


async def test_identical_rankings_are_grouped_in_sql(batcher, engine, make_question):
    poll = make_question(choices=("A", "B", "C"), kind="ranked")
    a, b, c = poll["choices"]
    for ranking in ([a, b], [a, b], [a, b], [c], [b, c, a]):
        assert await batcher.cast_ranking(poll["id"], ranking, voter()) is Outcome.COUNTED
    async with engine.acquire() as conn:
        choices, grouped = await ranked.grouped_rankings(conn, poll["id"])
    assert choices == [a, b, c]
    assert len(grouped.splitlines()) == 3
    assert ranked.parse_rankings(grouped) == {(a, b): 3, (c,): 1, (b, c, a): 1}
