"""Closed polls: closed by the maker or by `closes_at` passing; results shown, votes refused."""

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.web.voting import VOTING_CLOSED


def set_closes_at(sync_engine, question_id: int, interval: str) -> None:
    """Move a poll's closing time to now() plus a PostgreSQL interval (negative: the past)."""
    with sync_engine.begin() as conn:
        conn.execute(
            schema.question.update()
            .where(schema.question.c.id == question_id)
            .values(closes_at=sa.func.now() + sa.cast(interval, sa.Interval))
        )


async def test_poll_whose_closes_at_passed_shows_results_and_when_voting_closed(
    client, make_question, sync_engine
):
    question = make_question("Tabs or spaces?", choices=("Tabs", "Spaces"))
    set_closes_at(sync_engine, question["id"], "-2 hours")
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert 'name="choice"' not in page
    assert '<ul class="results"' in page
    assert "Voting closed " in page and " UTC." in page
    assert "Back to voting" not in page
    index = await (await client.get("/")).text()
    assert '<span class="closed-mark">Closed</span>' in index


async def test_open_poll_is_not_marked_closed(client, make_question, sync_engine):
    question = make_question()
    set_closes_at(sync_engine, question["id"], "2 hours")
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert 'name="choice"' in page and "Voting closes " in page
    assert "closed-mark" not in await (await client.get("/")).text()


async def test_vote_after_closes_at_passed_is_409_and_counts_nothing(
    anonymous, make_question, sync_engine, votes_of, vote
):
    question = make_question()
    set_closes_at(sync_engine, question["id"], "-1 second")
    response = await vote(anonymous, question["id"], question["choices"][0])
    assert response.status == 409
    page = await response.text()
    assert VOTING_CLOSED in page and 'href="/"' in page
    assert set(votes_of(question["id"]).values()) == {0}


async def test_poll_closes_by_itself_when_closes_at_arrives(
    anonymous, make_question, sync_engine, votes_of, vote, eventually
):
    question = make_question()
    set_closes_at(sync_engine, question["id"], "1 second")
    chosen = question["choices"][0]
    assert (await vote(anonymous, question["id"], chosen)).status == 302  # still open

    async def says_closed() -> bool:
        return "Voting closed" in await (await anonymous.get(f"poll/{question['id']}")).text()

    await eventually(says_closed)
    assert (await vote(anonymous, question["id"], chosen)).status == 409
    assert votes_of(question["id"])[chosen] == 1


async def test_votes_racing_a_close_count_exactly_those_answered_302_and_none_after(
    anonymous, client, make_poll, votes_of, vote_rows_match_counters, vote, eventually
):
    poll = await make_poll()
    chosen = min(votes_of(poll["id"]))
    storm = [asyncio.create_task(vote(anonymous, poll["id"], chosen)) for _ in range(200)]

    async def some_counted() -> bool:
        return votes_of(poll["id"])[chosen] > 0

    await eventually(some_counted)  # close while votes are arriving
    closed = await client.post(poll["manage"], data={"action": "close"}, allow_redirects=False)
    assert closed.status == 303
    counted_at_close = votes_of(poll["id"])[chosen]
    statuses = [response.status for response in await asyncio.gather(*storm)]
    assert set(statuses) <= {302, 409}
    assert votes_of(poll["id"])[chosen] == counted_at_close == statuses.count(302)
    assert vote_rows_match_counters()


async def test_a_vote_arriving_while_a_close_commits_waits_and_is_refused(
    anonymous, make_poll, sync_engine, votes_of, vote, eventually
):
    """The vote's state read locks the poll's row, so it sees the close once it commits."""
    poll = await make_poll()
    chosen = min(votes_of(poll["id"]))
    with sync_engine.connect() as closing, sync_engine.connect() as watcher:
        transaction = closing.begin()
        # What making.close_poll does, held open: the row locked, closed_at set.
        closing.execute(
            sa.select(schema.question.c.id).where(schema.question.c.id == poll["id"]).with_for_update()
        )
        closing.execute(
            schema.question.update().where(schema.question.c.id == poll["id"]).values(closed_at=sa.func.now())
        )
        voting = asyncio.create_task(vote(anonymous, poll["id"], chosen))
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )

        async def vote_waits_for_the_lock() -> bool:
            assert not voting.done(), "the vote finished without waiting for the close"
            return watcher.execute(waiting).scalar_one() > 0

        await eventually(vote_waits_for_the_lock)
        transaction.commit()
    response = await voting
    assert response.status == 409
    assert votes_of(poll["id"])[chosen] == 0


@pytest.mark.parametrize("form", [{}, {"choice": ""}, {"choice": "abc"}, {"choice": "99999"}])
async def test_any_vote_on_a_closed_poll_is_409_even_with_a_bad_choice(
    anonymous, make_question, votes_of, form
):
    question = make_question(closed_at=datetime.now(UTC))
    response = await anonymous.post(f"poll/{question['id']}/vote", data=form)
    assert response.status == 409
    assert VOTING_CLOSED in await response.text()
    assert set(votes_of(question["id"]).values()) == {0}
