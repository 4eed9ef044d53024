"""Taking a ballot back (store/votes.VoteBatcher.remove): its votes and as many from the
counters, all or nothing, serialised with votes and changes of the same ballot so that a
removal racing them never loses or doubles a vote."""

import asyncio

import sqlalchemy as sa

from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.store.votes import RemovalOutcome, VoteOutcome
from aiohttpdemo_polls.web.voting import VOTER_COOKIE, votes_key


def voters(sync_engine, question_id: int) -> set[str]:
    with sync_engine.connect() as conn:
        return set(
            conn.execute(sa.select(schema.ballot.c.voter).where(schema.ballot.c.question_id == question_id))
            .scalars()
            .all()
        )


def browser(n: int) -> str:
    return f"RemovingBrowserVoter{n:04d}"  # 24 characters, as a voter id is


async def test_removal_deletes_the_ballot_and_its_votes_and_lowers_the_counters(
    client, make_question, votes_of, sync_engine, vote_rows_match_counters
):
    question = make_question(choices=("A", "B", "C"), multiple=True)
    a, b, c = question["choices"]
    writer = client.app[votes_key].writer
    assert await writer.cast(question["id"], [a, b], browser(1)) is VoteOutcome.COUNTED
    assert await writer.cast(question["id"], [b], browser(2)) is VoteOutcome.COUNTED
    assert await writer.remove(question["id"], browser(1)) is RemovalOutcome.REMOVED
    assert votes_of(question["id"]) == {a: 0, b: 1, c: 0}
    assert voters(sync_engine, question["id"]) == {browser(2)}
    assert vote_rows_match_counters()
    assert await writer.remove(question["id"], browser(1)) is RemovalOutcome.NO_BALLOT


async def test_removal_is_refused_when_closed_locked_or_not_found(client, make_question, run_sql, votes_of):
    writer = client.app[votes_key].writer
    locked = make_question("Locked?", lock_votes=True)
    closing = make_question("Closing?")
    for poll in (locked, closing):
        assert await writer.cast(poll["id"], [poll["choices"][0]], browser(1)) is VoteOutcome.COUNTED
    run_sql("UPDATE question SET closed_at = now() WHERE id = :id", id=closing["id"])
    unpublished = make_question("Next week?", days=7)
    assert await writer.remove(locked["id"], browser(1)) is RemovalOutcome.LOCKED
    assert await writer.remove(closing["id"], browser(1)) is RemovalOutcome.CLOSED
    assert await writer.remove(unpublished["id"], browser(1)) is RemovalOutcome.NOT_FOUND
    assert await writer.remove(2**31, browser(1)) is RemovalOutcome.NOT_FOUND
    assert sum(votes_of(locked["id"]).values()) == sum(votes_of(closing["id"]).values()) == 1


async def test_removals_racing_changes_and_new_votes_lose_or_double_nothing(
    client, make_question, votes_of, sync_engine, vote_rows_match_counters
):
    question = make_question(choices=("A", "B", "C"), multiple=True)
    a, b, c = question["choices"]
    writer = client.app[votes_key].writer
    first = await asyncio.gather(*(writer.cast(question["id"], [a], browser(n)) for n in range(40)))
    assert set(first) == {VoteOutcome.COUNTED}
    # Each voter, at once: a change to other choices, the removal, and the change again.
    racing = []
    for n in range(40):
        racing += [
            writer.cast(question["id"], [b, c], browser(n)),
            writer.remove(question["id"], browser(n)),
            writer.cast(question["id"], [c], browser(n)),
        ]
    outcomes = await asyncio.gather(*racing)
    for n in range(40):
        _, removed, _ = outcomes[3 * n : 3 * n + 3]
        assert removed in (RemovalOutcome.REMOVED, RemovalOutcome.NO_BALLOT)
    kept = voters(sync_engine, question["id"])
    counts = votes_of(question["id"])
    assert vote_rows_match_counters()
    # Every voter ends with one ballot or none, and the counters hold exactly those ballots.
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.vote.c.voter, schema.vote.c.choice_id).where(
                schema.vote.c.question_id == question["id"]
            )
        ).all()
    assert {voter for voter, _ in rows} == kept
    assert sum(counts.values()) == len(rows) and counts[a] == 0
    for voter in kept:  # the choices of one of its later ballots, never a mix
        assert {choice for v, choice in rows if v == voter} in ({b, c}, {c})
    # A voter whose last word was a vote counted after its removal still has a ballot.
    for n in range(40):
        change, removed, last = outcomes[3 * n : 3 * n + 3]
        if removed is RemovalOutcome.REMOVED and VoteOutcome.COUNTED not in (change, last):
            assert browser(n) not in kept


async def test_racing_removals_through_the_pages_keep_counters_equal_to_vote_rows(
    anonymous, make_question, vote, votes_of, sync_engine, vote_rows_match_counters
):
    question = make_question(choices=("A", "B"))
    a, b = question["choices"]
    cookies = [{"Cookie": f"{VOTER_COOKIE}={browser(n)}"} for n in range(20)]
    for headers in cookies:
        assert (await vote(anonymous, question["id"], a, headers=headers)).status == 302
    sends = []
    for headers in cookies:
        sends.append(
            anonymous.post(f"/poll/{question['id']}/remove-vote", headers=headers, allow_redirects=False)
        )
        sends.append(vote(anonymous, question["id"], b, headers=headers))
    answers = await asyncio.gather(*sends)
    removals, votes = answers[0::2], answers[1::2]
    assert {r.status for r in removals} == {303} and {v.status for v in votes} == {302}
    assert vote_rows_match_counters()
    # Removed after the change to B: no ballot. Removed before the vote: B counted anew.
    counted_anew = [not v.headers["Location"].endswith("changed=1") for v in votes]
    assert votes_of(question["id"]) == {a: 0, b: sum(counted_anew)}
    for n, anew in enumerate(counted_anew):
        assert (browser(n) in voters(sync_engine, question["id"])) is anew
