"""Changing one's vote while a poll is open: the old choices lose one, the new gain one, in
the vote batch's one statement; the same choices again change nothing; `lock_votes` keeps
the first vote for good; racing changes never double or lose a vote."""

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa

from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.web.voting import ALREADY_VOTED, VOTE_CHANGED, VOTER_COOKIE, VOTING_CLOSED

SAME_BROWSER = "ChangingBrowserVoterId00"


def ballots(sync_engine, question_id: int) -> list[tuple[str, int]]:
    with sync_engine.connect() as conn:
        return conn.execute(
            sa.select(schema.ballot.c.voter, schema.ballot.c.changes).where(
                schema.ballot.c.question_id == question_id
            )
        ).all()


async def test_a_browser_changes_its_vote_and_is_told_so(client, make_question, votes_of, vote, sync_engine):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    assert (await vote(client, question["id"], yes)).status == 302
    changed = await vote(client, question["id"], no, allow_redirects=True)
    assert changed.url.query.get("changed") == "1"
    page = await changed.text()
    assert VOTE_CHANGED in page
    assert f'<li class="result mine" data-choice="{no}">' in page and page.count("(your vote)") == 1
    assert votes_of(question["id"]) == {yes: 0, no: 1}
    assert [changes for _, changes in ballots(sync_engine, question["id"])] == [1]


async def test_the_same_choice_again_changes_nothing(client, make_question, votes_of, vote):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    await vote(client, question["id"], yes)
    again = await vote(client, question["id"], yes, allow_redirects=True)
    assert again.url.query.get("already") == "1"
    assert ALREADY_VOTED.replace("'", "&#39;") in await again.text()
    assert votes_of(question["id"]) == {yes: 1, no: 0}


async def test_poll_page_shows_the_vote_ticked_and_a_button_to_change_it(client, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    before = await (await client.get(f"/poll/{question['id']}")).text()
    assert ">Vote</button>" in before and "checked" not in before
    await vote(client, question["id"], no)
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert "You voted for No." in page
    assert f'value="{no}" checked' in page and f'value="{yes}" checked' not in page
    assert ">Change my vote</button>" in page


async def test_lock_votes_keeps_the_first_vote(client, make_question, votes_of, vote):
    question = make_question(choices=("Yes", "No"), lock_votes=True)
    yes, no = question["choices"]
    await vote(client, question["id"], yes)
    again = await vote(client, question["id"], no)
    assert again.headers["Location"].endswith("?already=1")
    assert votes_of(question["id"]) == {yes: 1, no: 0}
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert "Votes in this poll cannot be changed." in page
    assert "Change my vote" not in page and "<fieldset disabled>" in page


async def test_multiple_choice_change_moves_only_the_choices_that_differ(
    client, make_question, votes_of, vote, vote_rows_match_counters, sync_engine
):
    question = make_question(choices=("A", "B", "C"), multiple=True)
    a, b, c = question["choices"]
    await vote(client, question["id"], a, b)
    with sync_engine.connect() as conn:
        kept_since = conn.execute(
            sa.select(schema.vote.c.voted_at).where(schema.vote.c.choice_id == b)
        ).scalar_one()
    assert (await vote(client, question["id"], b, c)).headers["Location"].endswith("?changed=1")
    assert votes_of(question["id"]) == {a: 0, b: 1, c: 1}
    with sync_engine.connect() as conn:  # B's row stayed as it was: it never left the ballot
        assert conn.execute(
            sa.select(schema.vote.c.voted_at).where(schema.vote.c.choice_id == b)
        ).scalar_one() == (kept_since)
    assert vote_rows_match_counters()


async def test_no_change_once_the_poll_is_closed(client, make_question, votes_of, vote, sync_engine):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    await vote(client, question["id"], yes)
    with sync_engine.begin() as conn:
        conn.execute(schema.question.update().values(closed_at=datetime.now(UTC)))
    refused = await vote(client, question["id"], no)
    assert refused.status == 409 and VOTING_CLOSED in await refused.text()
    assert votes_of(question["id"]) == {yes: 1, no: 0}


async def test_fifty_racing_changes_from_one_browser_leave_one_ballot_and_exact_counters(
    anonymous, make_question, votes_of, vote, sync_engine, vote_rows_match_counters
):
    question = make_question(choices=("A", "B", "C", "D"))
    choices = question["choices"]
    same_browser = {"Cookie": f"{VOTER_COOKIE}={SAME_BROWSER}"}
    assert (await vote(anonymous, question["id"], choices[0], headers=same_browser)).status == 302
    answers = await asyncio.gather(
        *(vote(anonymous, question["id"], choices[n % 4], headers=same_browser) for n in range(1, 51))
    )
    assert {a.status for a in answers} == {302}
    outcomes = {a.headers["Location"].partition("?")[2] for a in answers}
    assert outcomes <= {"changed=1", "already=1"} and "changed=1" in outcomes
    counts = votes_of(question["id"])
    assert sum(counts.values()) == 1  # one ballot, one choice: never doubled, never lost
    (ballot,) = ballots(sync_engine, question["id"])
    assert ballot[0] == SAME_BROWSER
    assert ballot[1] == sum(a.headers["Location"].endswith("changed=1") for a in answers)
    assert vote_rows_match_counters()


async def test_racing_changes_from_many_browsers_keep_counters_equal_to_vote_rows(
    anonymous, make_question, votes_of, vote, sync_engine, vote_rows_match_counters
):
    question = make_question(choices=("A", "B", "C"), multiple=True)
    choices = question["choices"]
    browsers = [{"Cookie": f"{VOTER_COOKIE}=RacingBrowserVoterId{n:04d}"} for n in range(20)]
    sends = [
        vote(anonymous, question["id"], *choices[: 1 + (n + k) % 3], headers=headers)
        for k in range(5)
        for n, headers in enumerate(browsers)
    ]
    assert {a.status for a in await asyncio.gather(*sends)} == {302}
    assert len(ballots(sync_engine, question["id"])) == 20
    assert vote_rows_match_counters()
    assert sum(votes_of(question["id"]).values()) >= 20
