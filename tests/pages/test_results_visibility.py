"""Results shown when the maker says: `always`, `after_vote` or `after_close`. A reader who
may not see the counts gets the choices and when the counts will show, and no number that
gives them away; the maker always sees them; live sockets obey the same rule."""

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from live_frames import frame

from aiohttpdemo_polls.maker.form import RESULTS_UNKNOWN
from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.store.rules import may_see_counts
from aiohttpdemo_polls.web.voting import VOTER_COOKIE

AFTER_VOTE = "Results will be shown after you vote."
AFTER_CLOSE = "Results will be shown when voting closes."
# Anything on a results page that tells how many voted or how they split.
NUMBERS = re.compile(r'class="(votes|percent|total-votes|fill|count)"|\bTotal:')


@pytest.mark.parametrize(
    ("results", "closed", "voted", "is_maker", "expected"),
    [
        ("always", False, False, False, True),
        ("after_vote", False, False, False, False),
        ("after_vote", False, True, False, True),
        ("after_vote", True, False, False, True),
        ("after_close", False, True, False, False),
        ("after_close", False, False, True, True),
        ("after_close", True, False, False, True),
    ],
)
def test_who_may_see_the_counts(results, closed, voted, is_maker, expected):
    poll = SimpleNamespace(results=results, closed=closed)
    assert may_see_counts(poll, voted=voted, is_maker=is_maker) is expected


def assert_hidden(page: str, line: str) -> None:
    assert line in page
    assert not NUMBERS.search(page), NUMBERS.search(page)


async def test_after_vote_poll_hides_counts_until_this_browser_votes(
    client, new_browser, make_question, add_votes, vote
):
    question = make_question("Secret until voted?", choices=("Red", "Blue"), results="after_vote")
    red, blue = question["choices"]
    add_votes(question["id"], {red: 3, blue: 1})
    stranger = new_browser(client)
    for path in ("results", "present"):
        page = await (await stranger.get(f"/poll/{question['id']}/{path}")).text()
        assert "Red" in page and "Blue" in page
        assert_hidden(page, AFTER_VOTE)

    voted = await vote(client, question["id"], blue, allow_redirects=True)
    page = await voted.text()
    assert re.search(rf'data-choice="{blue}">.*?<span class="votes">2</span>', page, re.S)
    assert 'class="total-votes">5<' in page
    present = await (await client.get(f"/poll/{question['id']}/present")).text()
    assert 'class="total-votes">5<' in present
    # ...and only for that browser: the cached pages for strangers still hide them.
    for path in ("results", "present"):
        assert_hidden(await (await stranger.get(f"/poll/{question['id']}/{path}")).text(), AFTER_VOTE)


async def test_after_close_poll_hides_counts_from_voters_but_not_from_its_maker(
    client, new_browser, make_poll, vote
):
    poll = await make_poll("Secret until closed?", ("Tea", "Coffee"), results="after_close")
    manage = await (await client.get(poll["manage"])).text()
    tea = int(re.search(r'data-choice="(\d+)"', manage)[1])
    voter = new_browser(client)
    answer = await vote(voter, poll["id"], tea)
    page = await (await voter.get(answer.headers["Location"], headers=_cookie(answer))).text()
    assert "(your vote)" in page
    assert_hidden(page, AFTER_CLOSE)

    manage = await (await client.get(poll["manage"])).text()
    assert '<span class="votes">1</span>' in manage and "Only you see the counts" in manage

    await client.post(poll["manage"], data={"action": "close"})
    page = await (await new_browser(client).get(f"/poll/{poll['id']}/results")).text()
    assert '<span class="votes">1</span>' in page and AFTER_CLOSE not in page


def _cookie(answer) -> dict[str, str]:
    return {"Cookie": f"{VOTER_COOKIE}={answer.cookies[VOTER_COOKIE].value}"}


async def test_new_poll_form_stores_the_results_setting_and_lock(make_poll, stored_poll):
    made = await make_poll("Stored?", ("A", "B"), results="after_vote", lock_votes="on")
    question = stored_poll(made["id"]).question
    assert (question.results, question.lock_votes) == ("after_vote", True)
    default = stored_poll((await make_poll("Default?", ("A", "B")))["id"]).question
    assert (default.results, default.lock_votes) == ("always", False)


async def test_unknown_results_setting_is_the_form_again_with_a_message(client, stored_poll):
    data = [("question_text", "Odd?"), ("choice", "A"), ("choice", "B"), ("results", "sometimes")]
    response = await client.post("/poll/new", data=data)
    assert response.status == 400
    page = await response.text()
    assert RESULTS_UNKNOWN in page and 'value="Odd?"' in page
    assert stored_poll(1).question is None


async def test_new_poll_form_offers_the_three_settings(client):
    page = await (await client.get("/poll/new")).text()
    assert re.search(r'type="radio" id="results-always" name="results" value="always" checked', page)
    for value in schema.RESULTS:
        assert f'name="results" value="{value}"' in page
    assert "Voters cannot change their vote" in page


async def test_live_frames_carry_counts_only_to_watchers_who_may_see_them(
    client, new_browser, make_poll, vote, eventually
):
    poll = await make_poll("Live secret?", ("Up", "Down"), results="after_close")
    stranger = await new_browser(client).ws_connect(f"/poll/{poll['id']}/live")
    maker = await client.ws_connect(f"/poll/{poll['id']}/live?token={poll['token']}")
    forged = await new_browser(client).ws_connect(f"/poll/{poll['id']}/live?token=not-the-token")
    hidden = await frame(stranger)
    counted = await frame(maker)
    forged_frame = await frame(forged)
    assert hidden["hidden"] is True and "total" not in hidden
    assert all(set(choice) == {"id"} for choice in hidden["choices"])
    assert forged_frame == hidden
    assert counted["total"] == 0

    up = hidden["choices"][0]["id"]
    assert (await vote(new_browser(client), poll["id"], up)).status == 302
    counted = await frame(maker)
    assert counted["total"] == 1
    # The close is the moment everyone may see them: the stranger's next frame has counts.
    await client.post(poll["manage"], data={"action": "close"})
    opened = await frame(stranger)
    assert opened["closed"] is True and opened["total"] == 1
    for ws in (stranger, maker, forged):
        await ws.close()


async def test_after_vote_watcher_who_voted_gets_counts(client, make_question, vote):
    question = make_question("Voted watcher?", choices=("A", "B"), results="after_vote")
    assert (await vote(client, question["id"], question["choices"][0])).status == 302
    ws = await client.ws_connect(f"/poll/{question['id']}/live")  # the client keeps the cookie
    snapshot = await frame(ws)
    assert snapshot["total"] == 1 and "hidden" not in snapshot
    await ws.close()


async def test_closed_after_close_poll_shows_counts_to_everyone(
    client, new_browser, make_question, add_votes
):
    question = make_question("Over?", choices=("A", "B"), results="after_close", closed_at=datetime.now(UTC))
    add_votes(question["id"], {question["choices"][1]: 2})
    page = await (await new_browser(client).get(f"/poll/{question['id']}")).text()
    assert 'class="total-votes">2<' in page
