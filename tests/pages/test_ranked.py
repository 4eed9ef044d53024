"""A ranked poll's pages: the ranking form without JavaScript (a place select per choice),
its rules shown back on the form, changing a ranking, the count round by round and head to
head, the results settings, and the presenter view."""

import asyncio
import itertools
import re
from datetime import UTC, datetime

import pytest

from aiohttpdemo_polls.pages import ranked as ranked_pages
from aiohttpdemo_polls.web.voting import VOTER_COOKIE

SAME_BROWSER = {"Cookie": f"{VOTER_COOKIE}=RankingBrowserVoterId000"}


@pytest.fixture
def rank():
    """`await rank(browser, poll, [choice ids best first])`: submit the ranking form as sent
    by a browser (every choice's select, the unranked ones empty)."""

    async def submit(browser, poll, ranking, **request):
        request.setdefault("allow_redirects", False)
        places = {c: str(ranking.index(c) + 1) if c in ranking else "" for c in poll["choices"]}
        data = {f"rank-{c}": place for c, place in places.items()}
        response = await browser.post(f"/poll/{poll['id']}/rank", data=data, **request)
        await response.read()
        return response

    return submit


@pytest.fixture
def ranked_poll(make_question):
    def make(texts=("Alice", "Bob", "Carol"), **columns):
        return make_question("Who chairs?", choices=texts, kind="ranked", **columns)

    return make


async def test_ranking_form_offers_a_place_select_beside_each_choice(client, ranked_poll):
    poll = ranked_poll()
    page = await (await client.get(f"/poll/{poll['id']}")).text()
    assert f'action="/poll/{poll["id"]}/rank"' in page
    for choice in poll["choices"]:
        assert f'<select id="rank-{choice}" name="rank-{choice}"' in page
    assert ">not ranked</option>" in page
    assert ">1st</option>" in page and ">2nd</option>" in page and ">3rd</option>" in page
    assert ">4th</option>" not in page  # three choices, three places


async def test_a_ranking_is_counted_and_shown_round_by_round(client, anonymous, ranked_poll, rank, votes_of):
    poll = ranked_poll(("Alice", "Bob", "Carol"))
    alice, bob, carol = poll["choices"]
    for ranking in ([alice, bob], [alice], [bob, alice], [bob, carol], [carol, bob]):
        answer = await rank(anonymous, poll, ranking)
        assert answer.status == 302 and answer.headers["Location"] == f"/poll/{poll['id']}/results"
    page = await (await anonymous.get(f"/poll/{poll['id']}/results")).text()
    assert '<table class="rounds">' in page and '<table class="head-to-head">' in page
    assert '<th scope="col">Round 1</th>' in page and '<th scope="col">Round 2</th>' in page
    assert "Carol eliminated." in page
    assert "1 ballot went to Bob." in page
    assert "Winner: Bob" in page
    assert "Ties: when choices tie for the fewest votes" in page and f"({poll['id']})" in page
    assert "Bob beats every other choice head to head." in page
    assert votes_of(poll["id"]) == {alice: 3, bob: 4, carol: 2}  # ballots ranking each


@pytest.mark.parametrize(
    ("places", "message"),
    [
        ({}, "Rank at least one choice"),
        ({0: "1", 1: "1"}, "Two choices share place 1"),
        ({0: "1", 1: "3"}, "Place 2 is missing"),
        ({0: "2"}, "Place 1 is missing"),
        ({0: "9"}, "A place must be a number from 1"),
        ({0: "x"}, "A place must be a number from 1"),
    ],
)
async def test_a_ranking_that_breaks_a_rule_is_shown_back_saying_what_to_fix(
    client, ranked_poll, votes_of, places, message
):
    poll = ranked_poll()
    data = {f"rank-{c}": places.get(i, "") for i, c in enumerate(poll["choices"])}
    answer = await client.post(f"/poll/{poll['id']}/rank", data=data)
    page = await answer.text()
    assert answer.status == 400
    assert message in page and 'role="alert"' in page
    for i, c in enumerate(poll["choices"]):  # the form as sent
        if places.get(i, "").isdigit() and int(places[i]) <= 3:
            assert re.search(rf'name="rank-{c}"[^<]*>.*?<option value="{places[i]}" selected>', page, re.S)
    assert sum(votes_of(poll["id"]).values()) == 0


async def test_a_ranking_may_be_changed_while_open_and_the_form_shows_it(client, ranked_poll, rank):
    poll = ranked_poll()
    alice, bob, carol = poll["choices"]
    await rank(client, poll, [alice, bob])
    changed = await rank(client, poll, [carol, alice])
    assert changed.headers["Location"].endswith("?changed=1")
    again = await rank(client, poll, [carol, alice])
    assert again.headers["Location"].endswith("?already=1")
    form = await (await client.get(f"/poll/{poll['id']}")).text()
    assert re.search(rf'name="rank-{carol}".*?<option value="1" selected>', form, re.S)
    assert re.search(rf'name="rank-{alice}".*?<option value="2" selected>', form, re.S)
    assert re.search(rf'name="rank-{bob}".*?<option value="" selected>', form, re.S)
    assert ">Change my ranking</button>" in form
    results = await (await client.get(f"/poll/{poll['id']}/results")).text()
    assert "Your ranking: Carol, Alice." in results


async def test_a_locked_ranked_poll_keeps_the_first_ranking(client, ranked_poll, rank):
    poll = ranked_poll(lock_votes=True)
    alice, bob, _ = poll["choices"]
    await rank(client, poll, [alice])
    again = await rank(client, poll, [bob])
    assert again.headers["Location"].endswith("?already=1")
    form = await (await client.get(f"/poll/{poll['id']}")).text()
    assert "<fieldset disabled" in form and "Change my ranking" not in form


async def test_a_closed_ranked_poll_takes_no_ranking_and_shows_the_count(client, ranked_poll, rank):
    closed = ranked_poll(closes_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert (await rank(client, closed, closed["choices"][:1])).status == 409
    page = await (await client.get(f"/poll/{closed['id']}")).text()
    assert '<table class="rounds">' not in page  # no ballots: no rounds to show
    assert "No ballots yet." in page


async def test_a_plain_ballot_for_a_ranked_poll_is_refused(client, ranked_poll, vote, votes_of):
    poll = ranked_poll()
    answer = await vote(client, poll["id"], poll["choices"][0])
    assert answer.status == 400
    assert sum(votes_of(poll["id"]).values()) == 0


@pytest.mark.parametrize(
    ("setting", "shown_before_vote"), [("always", True), ("after_vote", False), ("after_close", False)]
)
async def test_results_settings_apply_to_the_count(
    client, anonymous, ranked_poll, rank, setting, shown_before_vote
):
    poll = ranked_poll(results=setting)
    await rank(anonymous, poll, poll["choices"][:2])
    before = await (await client.get(f"/poll/{poll['id']}/results")).text()
    assert ('<table class="rounds">' in before) is shown_before_vote
    await rank(client, poll, poll["choices"][1:])
    after = await (await client.get(f"/poll/{poll['id']}/results")).text()
    assert ('<table class="rounds">' in after) is (setting != "after_close")


async def test_presenter_view_shows_the_leader_and_the_last_round(client, anonymous, ranked_poll, rank):
    poll = ranked_poll()
    alice, bob, carol = poll["choices"]
    for ranking in ([alice, bob], [bob], [carol, bob], [alice]):
        await rank(anonymous, poll, ranking)
    page = await (await client.get(f"/poll/{poll['id']}/present")).text()
    assert "Winner: " in page or "Leading: " in page
    assert "Round 2 of 2" in page
    assert '<div class="qr"' in page


def test_ranking_rules_read_the_places_as_sent():
    read = ranked_pages.read_ranking
    assert read({"rank-7": "2", "rank-5": "1", "rank-9": ""}, [5, 7, 9]).choice_ids == [5, 7]
    assert read({"rank-8": "1"}, [5, 7, 9]).error == ranked_pages.NOT_THIS_POLL


async def test_a_tie_for_elimination_says_which_step_of_the_rule_decided(anonymous, ranked_poll, rank):
    poll = ranked_poll(("Ash", "Birch", "Cedar", "Dogwood"))
    ash, birch, cedar, dogwood = poll["choices"]
    ballots = [[ash]] * 4 + [[birch]] * 3 + [[cedar]] * 2 + [[dogwood, cedar]]
    for ranking in ballots:
        await rank(anonymous, poll, ranking)
    page = await (await anonymous.get(f"/poll/{poll['id']}/results")).text()
    assert "Dogwood eliminated." in page and "1 ballot went to Cedar." in page
    assert "Birch, Cedar were tied for the fewest votes: the fewest first preferences decided." in page
    assert "Cedar eliminated." in page


@pytest.mark.parametrize(
    ("language", "places", "count_title"),
    [
        ("de", ("1.", "2."), "Runde für Runde"),
        ("fr", ("1er", "2e"), "Tour par tour"),
        ("es", ("1.º", "2.º"), "Ronda a ronda"),
    ],
)
async def test_the_ranked_pages_speak_the_readers_language(
    client, anonymous, ranked_poll, rank, language, places, count_title
):
    poll = ranked_poll()
    await rank(anonymous, poll, poll["choices"][:2])
    headers = {"Accept-Language": language}
    form = await (await client.get(f"/poll/{poll['id']}", headers=headers)).text()
    for place in places:
        assert f">{place}</option>" in form
    results = await (await client.get(f"/poll/{poll['id']}/results", headers=headers)).text()
    assert count_title in results


async def test_fifty_racing_rankings_from_one_browser_leave_one_ballot_as_last_answered(
    anonymous, ranked_poll, rank, sync_engine, vote_rows_match_counters
):
    poll = ranked_poll(("Ann", "Ben", "Cy", "Dee"))
    orders = [list(p) for p in itertools.permutations(poll["choices"], 3)][:50]
    answers = await asyncio.gather(*(rank(anonymous, poll, order, headers=SAME_BROWSER) for order in orders))
    outcomes = [a.headers["Location"].partition("?")[2] for a in answers]
    assert set(outcomes) <= {"", "changed=1", "already=1"} and outcomes.count("") == 1
    with sync_engine.connect() as conn:
        stored = (
            conn.exec_driver_sql(
                "SELECT array_agg(choice_id ORDER BY rank) FROM vote"
                " WHERE question_id = %(q)s GROUP BY voter",
                {"q": poll["id"]},
            )
            .scalars()
            .all()
        )
    counted = [order for order, outcome in zip(orders, outcomes, strict=True) if outcome != "already=1"]
    assert len(stored) == 1 and list(stored[0]) in counted
    assert vote_rows_match_counters()
