"""One vote per browser: the voter cookie, the ballot constraint, and multiple-choice polls."""

import asyncio
import random

import stored

from aiohttpdemo_polls.web.voting import ALREADY_VOTED, VOTER_COOKIE

SAME_BROWSER = "b" * 24  # a well-formed voter id, as the cookie would carry


async def test_second_vote_from_a_browser_is_not_counted_and_marks_the_first_choice(
    client, make_question, votes_of, vote
):
    question = make_question(choices=("Yes", "No"), lock_votes=True)  # else it is a change
    yes, no = question["choices"]
    assert (await vote(client, question["id"], yes)).status == 302
    response = await vote(client, question["id"], no, allow_redirects=True)
    assert response.status == 200
    assert response.url.path == f"/poll/{question['id']}/results"
    assert response.url.query.get("already") == "1"
    page = await response.text()
    assert ALREADY_VOTED in page
    assert f'<li class="result mine" data-choice="{yes}">' in page
    assert f'<li class="result" data-choice="{no}">' in page
    assert page.count("(your vote)") == 1
    assert votes_of(question["id"]) == {yes: 1, no: 0}


async def test_a_browser_without_the_cookie_counts_as_a_new_voter(anonymous, make_question, votes_of, vote):
    question = make_question(choices=("Yes", "No"))
    yes = question["choices"][0]
    for _ in range(3):
        assert (await vote(anonymous, question["id"], yes)).status == 302
    assert votes_of(question["id"])[yes] == 3  # what the cookie rule does not stop (README)


async def test_fifty_concurrent_votes_from_one_voter_cookie_count_once(
    anonymous, make_question, votes_of, sync_engine, vote_rows_match_counters, vote
):
    question = make_question()
    chosen = question["choices"][0]
    same_browser = {"Cookie": f"{VOTER_COOKIE}={SAME_BROWSER}"}
    answers = await asyncio.gather(
        *(vote(anonymous, question["id"], chosen, headers=same_browser) for _ in range(50))
    )
    assert {response.status for response in answers} == {302}
    locations = [response.headers["Location"] for response in answers]
    results = f"/poll/{question['id']}/results"
    assert sorted(locations) == [results] + [results + "?already=1"] * 49
    assert votes_of(question["id"]) == {c: int(c == chosen) for c in question["choices"]}
    assert len(stored.voters(sync_engine, question["id"])) == 1
    assert vote_rows_match_counters()


async def test_counters_equal_vote_rows_after_a_storm_from_many_voters(
    anonymous, make_question, votes_of, vote_rows_match_counters, sync_engine, vote
):
    """200 voters, each sending its ballot twice at once, on a multiple-choice poll."""
    question = make_question(choices=tuple(f"Option {n}" for n in range(5)), multiple=True)
    rng = random.Random(4)
    ballots_sent = {f"voter{n:019d}": rng.sample(question["choices"], rng.randint(1, 3)) for n in range(200)}

    async def one_vote(voter: str, chosen: list[int]) -> int:
        response = await vote(
            anonymous, question["id"], *chosen, headers={"Cookie": f"{VOTER_COOKIE}={voter}"}
        )
        return response.status

    attempts = [(v, c) for v, c in ballots_sent.items() for _ in range(2)]
    rng.shuffle(attempts)
    statuses = await asyncio.gather(*(one_vote(v, c) for v, c in attempts))
    assert set(statuses) == {302}
    expected = {c: sum(c in chosen for chosen in ballots_sent.values()) for c in question["choices"]}
    assert votes_of(question["id"]) == expected
    assert len(stored.voters(sync_engine, question["id"])) == 200
    assert vote_rows_match_counters()


async def test_multiple_choice_poll_counts_each_chosen_value(
    client, make_question, votes_of, vote_rows_match_counters, vote
):
    question = make_question(choices=("Red", "Green", "Blue"), multiple=True)
    red, green, blue = question["choices"]
    response = await vote(client, question["id"], red, blue, allow_redirects=True)
    assert response.status == 200
    page = await response.text()
    assert page.count("(your vote)") == 2
    assert votes_of(question["id"]) == {red: 1, green: 0, blue: 1}
    assert vote_rows_match_counters()


async def test_single_choice_poll_given_several_values_is_400_with_the_forms_message(
    client, make_question, votes_of, vote
):
    question = make_question(choices=("Red", "Green"))
    response = await vote(client, question["id"], *question["choices"])
    assert response.status == 400
    page = await response.text()
    assert "You didn&#39;t select a choice." in page and 'type="radio" name="choice"' in page
    assert set(votes_of(question["id"]).values()) == {0}


async def test_multiple_choice_form_shows_checkboxes(client, make_question):
    question = make_question(choices=("Red", "Green"), multiple=True)
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert page.count('type="checkbox" name="choice"') == 2
    assert "Pick as many as you like." in page
