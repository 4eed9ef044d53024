""" "Remove my vote": a browser takes its ballot back while the poll is open; the counts drop at
once, on cached pages and live results too; closed polls and locked votes refuse with a 409."""

from html import escape

from live_frames import counts, frame

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web.voting import (
    NO_VOTE_TO_REMOVE,
    REMOVAL_CLOSED,
    VOTE_REMOVED,
    VOTER_COOKIE,
    VOTES_FINAL,
)

BUTTON = ">Remove my vote</button>"


async def remove(browser, question_id: int, **request):
    request.setdefault("allow_redirects", False)
    response = await browser.post(f"/poll/{question_id}/remove-vote", **request)
    await response.read()
    return response


async def test_remove_my_vote_takes_the_ballot_out_of_the_counts(
    client, make_question, vote, votes_of, sync_engine, vote_rows_match_counters
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    assert (await vote(client, question["id"], yes)).status == 302
    poll_page = await (await client.get(f"/poll/{question['id']}")).text()
    assert BUTTON in poll_page and f'action="/poll/{question["id"]}/remove-vote"' in poll_page
    removed = await remove(client, question["id"])
    assert removed.status == 303
    assert removed.headers["Location"] == f"/poll/{question['id']}/results?removed=1"
    page = await (await client.get(removed.headers["Location"])).text()
    assert escape(VOTE_REMOVED) in page
    assert "(your vote)" not in page and BUTTON not in page
    assert votes_of(question["id"]) == {yes: 0, no: 0}
    assert vote_rows_match_counters()
    # The same browser may vote again, as a first vote.
    again = await vote(client, question["id"], no)
    assert again.headers["Location"] == f"/poll/{question['id']}/results"
    assert votes_of(question["id"]) == {yes: 0, no: 1}


async def test_the_results_page_offers_removal_to_the_voter_only(client, anonymous, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    await vote(client, question["id"], question["choices"][0])
    assert BUTTON in await (await client.get(f"/poll/{question['id']}/results")).text()
    assert BUTTON not in await (await anonymous.get(f"/poll/{question['id']}/results")).text()
    assert BUTTON not in await (await anonymous.get(f"/poll/{question['id']}")).text()


async def test_removing_with_no_vote_says_there_was_none(client, anonymous, make_question, vote, votes_of):
    question = make_question(choices=("Yes", "No"))
    await vote(client, question["id"], question["choices"][0])
    for browser in (anonymous, client):  # no cookie at all; a cookie with no ballot in this poll
        other = make_question("Another?") if browser is client else question
        removed = await remove(browser, other["id"], allow_redirects=True)
        assert removed.status == 200 and removed.url.query.get("unvoted") == "1"
        assert escape(NO_VOTE_TO_REMOVE) in await removed.text()
    assert sum(votes_of(question["id"]).values()) == 1


async def test_a_closed_poll_refuses_removal_with_409(client, make_question, vote, votes_of, run_sql):
    question = make_question(choices=("Yes", "No"))
    await vote(client, question["id"], question["choices"][0])
    run_sql("UPDATE question SET closed_at = now() WHERE id = :id", id=question["id"])
    refused = await remove(client, question["id"])
    assert refused.status == 409
    assert escape(REMOVAL_CLOSED) in await refused.text()
    assert sum(votes_of(question["id"]).values()) == 1
    assert BUTTON not in await (await client.get(f"/poll/{question['id']}/results")).text()


async def test_a_poll_with_locked_votes_keeps_them_and_offers_no_removal(
    client, make_question, vote, votes_of
):
    question = make_question(choices=("Yes", "No"), lock_votes=True)
    await vote(client, question["id"], question["choices"][0])
    assert BUTTON not in await (await client.get(f"/poll/{question['id']}")).text()
    assert BUTTON not in await (await client.get(f"/poll/{question['id']}/results")).text()
    refused = await remove(client, question["id"])
    assert refused.status == 409
    assert escape(VOTES_FINAL) in await refused.text()
    assert sum(votes_of(question["id"]).values()) == 1


async def test_removal_sent_from_another_site_is_refused(client, make_question, vote, votes_of):
    question = make_question(choices=("Yes", "No"))
    await vote(client, question["id"], question["choices"][0])
    refused = await remove(client, question["id"], headers={"Origin": "https://evil.example"})
    assert refused.status == 403
    refused = await remove(client, question["id"], headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status == 403
    assert sum(votes_of(question["id"]).values()) == 1


async def test_removal_of_an_unknown_poll_is_404_and_a_get_is_405(client):
    assert (await remove(client, 999999)).status == 404
    assert (await client.get("/poll/1/remove-vote")).status == 405


async def test_the_counts_drop_at_once_on_cached_pages_and_live_results(
    client, anonymous, make_question, vote, settled
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    voter = {"Cookie": f"{VOTER_COOKIE}=RemovingBrowserVoter0001"}
    await vote(anonymous, question["id"], yes, headers=voter)
    await vote(anonymous, question["id"], yes)
    await settled()
    results = f"/poll/{question['id']}/results"
    yes_count = f'data-choice="{yes}">'
    page = await (await anonymous.get(results)).text()  # now cached
    assert '<span class="votes">2</span> votes' in page[page.index(yes_count) :]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 2
        assert (await remove(anonymous, question["id"], headers=voter)).status == 303
        # This process's cache was told on commit, without waiting for the NOTIFY.
        page = await (await anonymous.get(results)).text()
        assert '<span class="votes">1</span> vote ' in page[page.index(yes_count) :]
        update = await frame(ws, timeout=2)
    assert update["total"] == 1 and counts(update) == {yes: 1, no: 0}


async def test_a_removal_reaches_the_live_watchers_of_another_process(
    aiohttp_client, config, make_question, vote
):
    # Two apps on one database, as two processes: the second hears of it through NOTIFY.
    first = await aiohttp_client(init_app(config=config))
    second = await aiohttp_client(init_app(config=config))
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    await vote(first, question["id"], no)
    async with second.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert counts(await frame(ws)) == {yes: 0, no: 1}
        assert (await remove(first, question["id"])).status == 303
        update = await frame(ws, timeout=2)
    assert counts(update) == {yes: 0, no: 0}


async def test_a_ranking_is_removed_like_any_ballot(
    client, make_question, votes_of, vote_rows_match_counters
):
    poll = make_question("Who chairs?", choices=("Alice", "Bob", "Carol"), kind="ranked")
    alice, bob, carol = poll["choices"]
    ranked = await client.post(
        f"/poll/{poll['id']}/rank", data={f"rank-{carol}": "1", f"rank-{alice}": "2"}, allow_redirects=False
    )
    assert ranked.status == 302
    assert BUTTON in await (await client.get(f"/poll/{poll['id']}")).text()
    assert BUTTON in await (await client.get(f"/poll/{poll['id']}/results")).text()
    assert (await remove(client, poll["id"])).status == 303
    assert votes_of(poll["id"]) == {alice: 0, bob: 0, carol: 0}
    assert vote_rows_match_counters()
    assert BUTTON not in await (await client.get(f"/poll/{poll['id']}")).text()
