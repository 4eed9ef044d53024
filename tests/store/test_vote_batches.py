"""Group commit (votes.py): votes arriving together share a transaction, with one-by-one outcomes."""

import asyncio
import secrets
from datetime import UTC, datetime

import aiohttp
import aiopg.sa
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.store.changes import Changes
from aiohttpdemo_polls.store.votes import VoteBatcher, VoteNotCounted, VoteOutcome

Outcome = VoteOutcome


def voter() -> str:
    return secrets.token_urlsafe(18)


class CountingEngine:
    """An engine that counts the connections taken from it: a batcher takes one per batch it sends."""

    def __init__(self, engine: aiopg.sa.Engine) -> None:
        self.engine = engine
        self.taken = 0

    def acquire(self):
        self.taken += 1
        return self.engine.acquire()

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


@pytest.fixture
async def engine(database_url):
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=4) as engine:
        yield CountingEngine(engine)


@pytest.fixture
def changes(database_url):
    """A bus of changes that is never started: only the batcher's own commits reach it."""
    return Changes(database_url)


async def test_many_voters_at_once_are_all_counted_in_few_transactions(
    engine, changes, make_question, votes_of, vote_rows_match_counters
):
    question = make_question(choices=("Hot", "Cold"))
    hot, cold = question["choices"]
    batcher = VoteBatcher(engine, changes)
    outcomes = await asyncio.gather(
        *(batcher.cast(question["id"], [hot if n % 3 else cold], voter()) for n in range(300))
    )
    assert outcomes == [Outcome.COUNTED] * 300
    assert votes_of(question["id"]) == {hot: 200, cold: 100}
    assert vote_rows_match_counters()
    assert engine.taken < 30  # they were grouped, not one transaction each


async def test_repeated_voter_within_one_batch_counts_once(engine, changes, make_question, votes_of):
    question = make_question(choices=("Yes", "No"), lock_votes=True)
    yes, no = question["choices"]
    batcher = VoteBatcher(engine, changes, writers=1)
    same = voter()
    outcomes = await asyncio.gather(
        batcher.cast(question["id"], [yes], same),
        batcher.cast(question["id"], [no], same),
        batcher.cast(question["id"], [no], voter()),
    )
    assert engine.taken == 1
    assert outcomes == [Outcome.COUNTED, Outcome.ALREADY_VOTED, Outcome.COUNTED]
    assert votes_of(question["id"]) == {yes: 1, no: 1}
    # ...and exactly as across batches: the same voter again later is refused too.
    assert await batcher.cast(question["id"], [no], same) is Outcome.ALREADY_VOTED


async def test_each_committed_batch_tells_the_bus_of_changes_the_polls_it_changed(
    engine, changes, make_question
):
    question = make_question("One?", choices=("Yes", "No"))
    other = make_question("Two?", choices=("A", "B"))
    closed = make_question("Closed?", choices=("X", "Y"), closed_at=datetime.now(UTC))
    heard: list[int | None] = []
    changes.subscribe(heard.append)
    batcher = VoteBatcher(engine, changes, writers=1)
    same = voter()
    outcomes = await asyncio.gather(
        batcher.cast(question["id"], [question["choices"][0]], voter()),
        batcher.cast(question["id"], [question["choices"][1]], voter()),
        batcher.cast(other["id"], [other["choices"][0]], same),
        batcher.cast(closed["id"], [closed["choices"][0]], voter()),
    )
    assert engine.taken == 1
    assert outcomes == [Outcome.COUNTED, Outcome.COUNTED, Outcome.COUNTED, Outcome.CLOSED]
    assert sorted(heard) == sorted([question["id"], other["id"]])  # each once, none for the refusal
    # A batch that changed nothing (the same choice again, a closed poll) tells nothing.
    heard.clear()
    assert await batcher.cast(other["id"], [other["choices"][0]], same) is Outcome.ALREADY_VOTED
    assert await batcher.cast(closed["id"], [closed["choices"][1]], voter()) is Outcome.CLOSED
    assert heard == []
    # A changed vote changes its poll's counts: told.
    assert await batcher.cast(other["id"], [other["choices"][1]], same) is Outcome.CHANGED
    assert heard == [other["id"]]


async def test_invalid_choices_and_closed_polls_are_refused_without_touching_the_others(
    engine, changes, make_question, votes_of, vote_rows_match_counters
):
    question = make_question("Open?", choices=("Yes", "No"), lock_votes=True)
    other = make_question("Other?", choices=("A", "B"))
    closed = make_question("Closed?", choices=("X", "Y"), closed_at=datetime.now(UTC))
    future = make_question("Later?", days=3, choices=("P", "Q"))
    yes, no = question["choices"]
    batcher = VoteBatcher(engine, changes, writers=1)
    already = voter()
    assert await batcher.cast(question["id"], [yes], already) is Outcome.COUNTED
    outcomes = await asyncio.gather(
        batcher.cast(question["id"], [yes], voter()),
        batcher.cast(question["id"], [other["choices"][0]], voter()),  # another poll's choice
        batcher.cast(question["id"], [yes, other["choices"][0]], voter()),  # one good, one not
        batcher.cast(closed["id"], [closed["choices"][0]], voter()),
        batcher.cast(future["id"], [future["choices"][0]], voter()),
        batcher.cast(question["id"], [no], already),  # voted in an earlier batch
        batcher.cast(question["id"], [other["choices"][1]], already),  # ...checked before the choice
        batcher.cast(question["id"], [0], voter()),
        batcher.cast(question["id"], [no], voter()),
    )
    assert outcomes == [
        Outcome.COUNTED,
        Outcome.INVALID_CHOICE,
        Outcome.INVALID_CHOICE,
        Outcome.CLOSED,
        Outcome.INVALID_CHOICE,
        Outcome.ALREADY_VOTED,
        Outcome.ALREADY_VOTED,
        Outcome.INVALID_CHOICE,
        Outcome.COUNTED,
    ]
    assert votes_of(question["id"]) == {yes: 2, no: 1}
    assert set(votes_of(other["id"]).values()) == {0}
    assert set(votes_of(closed["id"]).values()) == {0}
    assert vote_rows_match_counters()


async def test_failed_batch_is_retried_one_by_one_and_only_the_bad_ballot_fails(
    engine, changes, make_question, votes_of, vote_rows_match_counters
):
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    batcher = VoteBatcher(engine, changes, writers=1)
    # A voter id longer than the column makes PostgreSQL reject the whole batch's INSERT.
    outcomes = await asyncio.gather(
        batcher.cast(question["id"], [yes], voter()),
        batcher.cast(question["id"], [yes], "x" * 100),
        batcher.cast(question["id"], [yes], voter()),
        return_exceptions=True,
    )
    assert outcomes[0] is Outcome.COUNTED and outcomes[2] is Outcome.COUNTED
    assert isinstance(outcomes[1], VoteNotCounted)
    assert votes_of(question["id"])[yes] == 2
    assert vote_rows_match_counters()


async def test_every_302_is_sent_after_its_vote_is_committed(
    client, new_browser, make_question, sync_engine, votes_of
):
    question = make_question(choices=("Hot", "Cold"))
    hot = question["choices"][0]

    async def vote_and_check(session: aiohttp.ClientSession) -> bool:
        response = await session.post(
            f"/poll/{question['id']}/vote", data={"choice": str(hot)}, allow_redirects=False
        )
        assert response.status == 302
        cookie = response.cookies["polls_voter"].value
        # Read from another connection the moment the redirect arrives: it must be there.
        with sync_engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(schema.vote)
                    .where(schema.vote.c.question_id == question["id"], schema.vote.c.voter == cookie)
                ).scalar_one()
                == 1
            )

    seen = await asyncio.gather(*(vote_and_check(new_browser(client)) for _ in range(40)))
    assert all(seen)
    assert votes_of(question["id"])[hot] == 40


async def test_two_processes_batching_the_same_voters_count_each_once_without_deadlock(
    database_url, changes, make_question, votes_of, vote_rows_match_counters, caplog
):
    question = make_question(choices=("Hot", "Cold"), lock_votes=True)
    hot, cold = question["choices"]
    voters = [voter() for _ in range(300)]
    # Two engines and batchers: two processes' vote writers, racing for the same ballots
    # (each voter votes through both at once) and the same two counters.
    async with (
        aiopg.sa.create_engine(database_url, minsize=1, maxsize=2) as one_pool,
        aiopg.sa.create_engine(database_url, minsize=1, maxsize=2) as other_pool,
    ):
        one, other = CountingEngine(one_pool), CountingEngine(other_pool)
        first, second = VoteBatcher(one, changes), VoteBatcher(other, changes)
        casts = []
        for n, v in enumerate(voters):
            casts.append(first.cast(question["id"], [hot], v))
            casts.append(second.cast(question["id"], [cold if n % 2 else hot], v))
        outcomes = await asyncio.gather(*casts)
    assert outcomes.count(Outcome.COUNTED) == 300
    assert outcomes.count(Outcome.ALREADY_VOTED) == 300
    assert sum(votes_of(question["id"]).values()) == 300
    assert vote_rows_match_counters()
    # Each batch went through whole: none failed (a deadlock would) and was retried alone.
    assert not [r for r in caplog.records if r.name == "aiohttpdemo_polls.store.votes"]
    assert one.taken + other.taken < 100


async def test_two_batchers_on_one_engine_share_its_prepared_connections(
    engine, changes, make_question, votes_of
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    first, second = VoteBatcher(engine, changes), VoteBatcher(engine, changes)
    assert await first.cast(question["id"], [yes], voter()) is Outcome.COUNTED
    # The same pooled connection, on which `first` prepared the batch statement.
    assert await second.cast(question["id"], [no], voter()) is Outcome.COUNTED
    assert votes_of(question["id"]) == {yes: 1, no: 1}
