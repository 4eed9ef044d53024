"""Closed polls: closed by the maker or by `closes_at` passing; results shown, votes refused."""

import asyncio
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import db

CLOSED_VOTE = "Voting on this poll has closed; your vote was not counted."


def set_closes_at(sync_engine, question_id: int, interval: str) -> None:
    """Move a poll's closing time to now() plus a PostgreSQL interval (negative: the past)."""
    with sync_engine.begin() as conn:
        conn.execute(
            db.question.update()
            .where(db.question.c.id == question_id)
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
    anonymous, make_question, sync_engine, votes_of
):
    question = make_question()
    set_closes_at(sync_engine, question["id"], "-1 second")
    response = await anonymous.post(f"poll/{question['id']}/vote", data={"choice": question["choices"][0]})
    assert response.status == 409
    page = await response.text()
    assert CLOSED_VOTE in page and 'href="/"' in page
    assert set(votes_of(question["id"]).values()) == {0}


async def test_vote_on_a_poll_its_maker_closed_is_409_and_counts_nothing(
    anonymous, make_poll, client, votes_of
):
    poll = await make_poll()
    await client.post(poll["manage"], data={"action": "close"})
    response = await anonymous.post(f"poll/{poll['id']}/vote", data={"choice": "1"})
    assert response.status == 409
    assert CLOSED_VOTE in await response.text()
    assert set(votes_of(poll["id"]).values()) == {0}
    page = await (await client.get(f"/poll/{poll['id']}")).text()
    assert "Voting closed " in page


async def test_poll_closes_by_itself_when_closes_at_arrives(anonymous, make_question, sync_engine, votes_of):
    question = make_question()
    set_closes_at(sync_engine, question["id"], "1 second")
    chosen = question["choices"][0]
    first = await anonymous.post(
        f"poll/{question['id']}/vote", data={"choice": chosen}, allow_redirects=False
    )
    assert first.status == 302  # still open
    deadline = time.monotonic() + 10
    while True:
        page = await (await anonymous.get(f"poll/{question['id']}")).text()
        if "Voting closed" in page:
            break
        assert time.monotonic() < deadline, "the poll never closed"
        await asyncio.sleep(0.05)
    late = await anonymous.post(f"poll/{question['id']}/vote", data={"choice": chosen})
    assert late.status == 409
    assert votes_of(question["id"])[chosen] == 1


async def test_votes_racing_a_close_count_exactly_those_answered_302_and_none_after(
    anonymous, client, make_poll, votes_of, vote_rows_match_counters
):
    poll = await make_poll()
    chosen = min(votes_of(poll["id"]))

    async def one_vote() -> int:
        async with anonymous.post(
            f"poll/{poll['id']}/vote", data={"choice": str(chosen)}, allow_redirects=False
        ) as response:
            return response.status

    storm = [asyncio.create_task(one_vote()) for _ in range(200)]
    deadline = time.monotonic() + 10
    while votes_of(poll["id"])[chosen] == 0:  # close while votes are arriving
        assert time.monotonic() < deadline, "no vote was counted"
        await asyncio.sleep(0.01)
    closed = await client.post(poll["manage"], data={"action": "close"}, allow_redirects=False)
    assert closed.status == 303
    counted_at_close = votes_of(poll["id"])[chosen]
    statuses = await asyncio.gather(*storm)
    assert set(statuses) <= {302, 409}
    assert votes_of(poll["id"])[chosen] == counted_at_close == statuses.count(302)
    assert vote_rows_match_counters()


async def test_a_vote_arriving_while_a_close_commits_waits_and_is_refused(
    anonymous, make_poll, sync_engine, votes_of
):
    """The vote's state read locks the poll's row, so it sees the close once it commits."""
    poll = await make_poll()
    chosen = min(votes_of(poll["id"]))
    with sync_engine.connect() as closing, sync_engine.connect() as watcher:
        transaction = closing.begin()
        # What db_manage.close_poll does, held open: the row locked, closed_at set.
        closing.execute(sa.select(db.question.c.id).where(db.question.c.id == poll["id"]).with_for_update())
        closing.execute(
            db.question.update().where(db.question.c.id == poll["id"]).values(closed_at=sa.func.now())
        )
        vote = asyncio.create_task(
            anonymous.post(f"poll/{poll['id']}/vote", data={"choice": str(chosen)}, allow_redirects=False)
        )
        deadline = time.monotonic() + 10
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        while watcher.execute(waiting).scalar_one() == 0:
            assert time.monotonic() < deadline, "the vote never waited for the close"
            assert not vote.done(), "the vote finished without waiting for the close"
            await asyncio.sleep(0.01)
        transaction.commit()
    response = await vote
    assert response.status == 409
    assert votes_of(poll["id"])[chosen] == 0


@pytest.mark.parametrize("form", [{}, {"choice": ""}, {"choice": "abc"}, {"choice": "99999"}])
async def test_any_vote_on_a_closed_poll_is_409_even_with_a_bad_choice(
    anonymous, make_question, votes_of, form
):
    question = make_question(closed_at=datetime.now(UTC))
    response = await anonymous.post(f"poll/{question['id']}/vote", data=form)
    assert response.status == 409
    assert CLOSED_VOTE in await response.text()
    assert set(votes_of(question["id"]).values()) == {0}
