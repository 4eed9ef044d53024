"""Date polls in the store: answers go through the vote batcher with a name, every option
answered, 'no' kept as a row; counters (`votes` = yes, `if_need_be`) equal the rows under
concurrent answers, changes and removals; settling closes the poll."""

import asyncio
import secrets
from datetime import date
from typing import NamedTuple

import aiopg.sa
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.store import dates, schema
from aiohttpdemo_polls.store.changes import Changes
from aiohttpdemo_polls.store.votes import RemovalOutcome, VoteBatcher, VoteOutcome


def voter() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture
async def engine(database_url):
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=6) as engine:
        yield engine


@pytest.fixture
def changes(database_url):
    return Changes(database_url)


@pytest.fixture
def date_poll(make_question, sync_engine):
    """A date poll of three whole days: its id and option ids."""

    def make(**columns):
        poll = make_question("When shall we meet?", choices=("Mon", "Tue", "Wed"), kind="dates", **columns)
        with sync_engine.begin() as conn:
            for n, choice_id in enumerate(poll["choices"]):
                conn.execute(
                    schema.choice.update()
                    .where(schema.choice.c.id == choice_id)
                    .values(day=date(2030, 3, 4 + n))
                )
        return poll

    return make


def counters(sync_engine, question_id):
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.choice.c.id, schema.choice.c.votes, schema.choice.c.if_need_be)
            .where(schema.choice.c.question_id == question_id)
            .order_by(schema.choice.c.id)
        ).all()
    return [(r.votes, r.if_need_be) for r in rows]


async def test_answer_with_name_counts_yes_and_if_need_be_and_stores_no_as_a_row(
    engine, changes, date_poll, sync_engine, vote_rows_match_counters
):
    poll = date_poll()
    mon, tue, wed = poll["choices"]
    batcher = VoteBatcher(engine, changes)
    answers = {mon: "yes", tue: "if_need_be", wed: "no"}
    assert await batcher.cast(poll["id"], [], voter(), answers=answers, name="Ada") is VoteOutcome.COUNTED
    assert counters(sync_engine, poll["id"]) == [(1, 0), (0, 1), (0, 0)]
    with sync_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT choice_id, answer FROM vote ORDER BY choice_id")).all()
        name = conn.execute(sa.text("SELECT name FROM ballot")).scalar_one()
    assert [tuple(r) for r in stored] == [(mon, "yes"), (tue, "if_need_be"), (wed, "no")]
    assert name == "Ada"
    assert vote_rows_match_counters()


async def test_changed_answers_move_the_counters_and_keep_one_row_per_option(
    engine, changes, date_poll, sync_engine, vote_rows_match_counters
):
    poll = date_poll()
    mon, tue, wed = poll["choices"]
    batcher = VoteBatcher(engine, changes)
    me = voter()
    await batcher.cast(poll["id"], [], me, answers={mon: "yes", tue: "if_need_be", wed: "no"}, name="Ada")
    outcome = await batcher.cast(
        poll["id"], [], me, answers={mon: "no", tue: "yes", wed: "if_need_be"}, name="Ada L."
    )
    assert outcome is VoteOutcome.CHANGED
    assert counters(sync_engine, poll["id"]) == [(0, 0), (1, 0), (0, 1)]
    again = await batcher.cast(
        poll["id"], [], me, answers={mon: "no", tue: "yes", wed: "if_need_be"}, name="Ada L."
    )
    assert again is VoteOutcome.ALREADY_VOTED
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM vote")).scalar_one() == 3
        assert conn.execute(sa.text("SELECT name FROM ballot")).scalar_one() == "Ada L."
    assert vote_rows_match_counters()


async def test_answers_missing_an_option_or_a_name_are_refused(engine, changes, date_poll, make_question):
    poll = date_poll()
    mon, tue, _ = poll["choices"]
    batcher = VoteBatcher(engine, changes)
    partial = await batcher.cast(poll["id"], [], voter(), answers={mon: "yes", tue: "no"}, name="Bo")
    assert partial is VoteOutcome.INVALID_CHOICE
    nameless = {c: "yes" for c in poll["choices"]}
    assert (
        await batcher.cast(poll["id"], [], voter(), answers=nameless, name="") is VoteOutcome.INVALID_CHOICE
    )
    odd = {c: "maybe" for c in poll["choices"]}
    assert await batcher.cast(poll["id"], [], voter(), answers=odd, name="Bo") is VoteOutcome.INVALID_CHOICE
    # A plain vote is not an answer to a date poll, and a date answer no vote of a choices poll.
    assert await batcher.cast(poll["id"], [mon], voter()) is VoteOutcome.INVALID_CHOICE
    other = make_question("Lunch?", choices=("A", "B"))
    answers = {c: "yes" for c in other["choices"]}
    assert (
        await batcher.cast(other["id"], [], voter(), answers=answers, name="Bo") is VoteOutcome.INVALID_CHOICE
    )


async def test_concurrent_answers_changes_and_removals_keep_counters_equal_to_rows(
    engine, changes, date_poll, sync_engine, vote_rows_match_counters
):
    poll = date_poll()
    options = poll["choices"]
    batcher = VoteBatcher(engine, changes)
    voters = [voter() for _ in range(40)]
    said = ("yes", "if_need_be", "no")

    async def participant(n: int, who: str) -> None:
        for round_ in range(4):
            answers = {c: said[(n + round_ + i) % 3] for i, c in enumerate(options)}
            await batcher.cast(poll["id"], [], who, answers=answers, name=f"P{n}")
            if (n + round_) % 3 == 0:
                await batcher.remove(poll["id"], who)

    await asyncio.gather(*(participant(n, who) for n, who in enumerate(voters)))
    assert vote_rows_match_counters()
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM vote")).scalar_one()
        ballots = conn.execute(sa.text("SELECT count(*) FROM ballot")).scalar_one()
    assert rows == ballots * len(options)


async def test_removing_a_row_takes_its_answers_and_counts_away(
    engine, changes, date_poll, sync_engine, vote_rows_match_counters
):
    poll = date_poll()
    mon, tue, wed = poll["choices"]
    batcher = VoteBatcher(engine, changes)
    me = voter()
    await batcher.cast(poll["id"], [], me, answers={mon: "yes", tue: "if_need_be", wed: "no"}, name="Ada")
    assert counters(sync_engine, poll["id"]) == [(1, 0), (0, 1), (0, 0)]
    # The one removal every poll has ("Remove my vote"): yes and if-need-be counters drop.
    assert await batcher.remove(poll["id"], me) is RemovalOutcome.REMOVED
    assert await batcher.remove(poll["id"], me) is RemovalOutcome.NO_BALLOT
    assert counters(sync_engine, poll["id"]) == [(0, 0), (0, 0), (0, 0)]
    assert vote_rows_match_counters()


async def test_settling_records_the_option_and_closes_the_poll(
    engine, changes, date_poll, stored_poll, make_question
):
    poll = date_poll()
    other = make_question("Elsewhere?", choices=("A", "B"))
    async with engine.acquire() as conn:
        wrong = await dates.settle(conn, changes, poll["id"], other["choices"][0])
        assert wrong is dates.Settling.NOT_AN_OPTION
        assert await dates.settle(conn, changes, poll["id"], poll["choices"][1]) is dates.Settling.SETTLED
    stored = stored_poll(poll["id"]).question
    assert stored.settled_choice_id == poll["choices"][1]
    assert stored.closed
    batcher = VoteBatcher(engine, changes)
    answers = {c: "yes" for c in poll["choices"]}
    assert await batcher.cast(poll["id"], [], voter(), answers=answers, name="Late") is VoteOutcome.CLOSED


class Option(NamedTuple):
    id: int
    votes: int
    if_need_be: int


def test_best_options_are_most_yes_then_most_if_need_be():
    assert dates.best_options([Option(1, 2, 0), Option(2, 2, 1), Option(3, 1, 5)]) == {2}
    assert dates.best_options([Option(1, 2, 1), Option(2, 2, 1)]) == {1, 2}
    assert dates.best_options([Option(1, 0, 0), Option(2, 0, 0)]) == set()
