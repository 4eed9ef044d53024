"""A poll the operator hid: 410 on every page of it, a 410 problem document in the API, gone
from the lists, its live sockets closed in every process, its maker told; restored as it was."""

import json

import aiohttp
import pytest
from live_frames import frame
from markupsafe import escape

from aiohttpdemo_polls.live.hub import live_key
from aiohttpdemo_polls.maker import manage
from aiohttpdemo_polls.web.content import REMOVED

HIDE = {"action": "hide", "reason": "Spam."}
RESTORE = {"action": "restore", "reason": "Fine after all."}
PAGES = ["", "/results", "/present", "/report"]
EXPORTS = ["/results.csv", "/results.json", "/ballots.csv"]


@pytest.fixture
async def hidden_poll(client, make_poll, sign_in, anonymous):
    """A poll made in the browser, with a vote, hidden by the signed-in operator (the client)."""
    poll = await make_poll("Buy cheap pills?", ("Yes", "No"))
    await anonymous.post(f"/poll/{poll['id']}/vote", data={"choice": "1"}, allow_redirects=False)
    await sign_in(client)
    answer = await client.post(f"/admin/poll/{poll['id']}", data=HIDE, allow_redirects=False)
    assert answer.status == 303
    return poll


async def assert_removed(response: aiohttp.ClientResponse) -> None:
    page = await response.text()
    assert response.status == 410, (response.url, response.status)
    assert REMOVED.replace("'", "&#39;") in page and "Buy cheap pills?" not in page, response.url


@pytest.mark.parametrize("page", PAGES)
async def test_every_page_of_a_hidden_poll_is_a_410_saying_the_operator_removed_it(
    hidden_poll, new_browser, client, page
):
    await assert_removed(await new_browser(client).get(f"/poll/{hidden_poll['id']}{page}"))


async def test_a_voter_of_a_hidden_poll_gets_the_410_too(hidden_poll, new_browser, client):
    # A browser with a voter cookie is read for, not served the cached page: the same check.
    voter = new_browser(client, headers={"Cookie": "polls_voter=" + "A" * 24})
    for page in ("", "/results", "/present"):
        await assert_removed(await voter.get(f"/poll/{hidden_poll['id']}{page}"))


async def test_voting_in_a_hidden_poll_is_a_410_and_counts_nothing(
    hidden_poll, new_browser, client, votes_of
):
    before = votes_of(hidden_poll["id"])
    response = await new_browser(client).post(
        f"/poll/{hidden_poll['id']}/vote", data={"choice": "2"}, allow_redirects=False
    )
    await assert_removed(response)
    assert votes_of(hidden_poll["id"]) == before


@pytest.mark.parametrize("export", EXPORTS)
async def test_the_exports_of_a_hidden_poll_are_a_410(hidden_poll, client, export):
    await assert_removed(await client.get(hidden_poll["manage"] + export))


async def test_the_api_answers_a_hidden_poll_with_a_410_problem_document(hidden_poll, new_browser, client):
    browser = new_browser(client)
    for method, path, body in (
        ("GET", f"/api/polls/{hidden_poll['id']}", None),
        ("POST", f"/api/polls/{hidden_poll['id']}/vote", {"choices": [1]}),
    ):
        response = await browser.request(
            method,
            path,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 410 and response.content_type == "application/problem+json", path
        document = await response.json()
        assert document["status"] == 410 and document["title"] == "Gone" and document["detail"] == REMOVED


async def test_a_hidden_poll_leaves_the_index_and_the_api_list(
    hidden_poll, client, new_browser, make_question
):
    make_question("Still shown?")
    browser = new_browser(client)
    index = await (await browser.get("/")).text()
    assert "Still shown?" in index and "Buy cheap pills?" not in index
    listed = await (await browser.get("/api/polls")).json()
    assert [p["question_text"] for p in listed["polls"]] == ["Still shown?"]


async def test_the_live_socket_of_a_hidden_poll_is_refused(hidden_poll, client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/poll/{hidden_poll['id']}/live")
    assert refused.value.status == 410


async def test_the_makers_manage_page_says_the_poll_was_hidden(hidden_poll, client):
    page = await (await client.get(hidden_poll["manage"])).text()
    assert 'id="hidden-note"' in page and "hid this poll" in page
    assert "data-live" not in page and "results.csv" not in page and 'value="close"' not in page
    refused = await client.post(hidden_poll["manage"], data={"action": "close"}, allow_redirects=False)
    assert refused.status == 409 and str(escape(manage.HIDDEN)) in await refused.text()
    # The maker may still delete it.
    deleted = await client.post(
        hidden_poll["manage"], data={"action": "delete", "confirm": "yes"}, allow_redirects=False
    )
    assert deleted.status == 303


async def test_a_restored_poll_is_shown_again_as_it_was(hidden_poll, client, new_browser, votes_of):
    counts = votes_of(hidden_poll["id"])
    await client.post(f"/admin/poll/{hidden_poll['id']}", data=RESTORE, allow_redirects=False)
    browser = new_browser(client)
    for page in PAGES:
        assert (await browser.get(f"/poll/{hidden_poll['id']}{page}")).status == 200, page
    assert "Buy cheap pills?" in await (await browser.get("/")).text()
    assert votes_of(hidden_poll["id"]) == counts


async def test_hiding_closes_the_polls_open_live_sockets(client, make_question, sign_in):
    question = make_question("Buy cheap pills?")
    await sign_in(client)
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        await frame(ws)
        await client.post(f"/admin/poll/{question['id']}", data=HIDE, allow_redirects=False)
        assert await frame(ws, timeout=2) == {"question_id": question["id"], "deleted": True, "removed": True}
        closing = await ws.receive(timeout=2)
        assert closing.type is aiohttp.WSMsgType.CLOSE
    assert client.app[live_key].count == 0


async def test_a_poll_hidden_by_sql_closes_its_sockets_and_pages_within_a_second(
    client, make_question, run_sql, eventually, new_browser
):
    # Any process, any host: hiding is a change to `question`, which every process hears of.
    question = make_question("Buy cheap pills?")
    browser = new_browser(client)
    assert (await browser.get(f"/poll/{question['id']}")).status == 200  # now in the page cache
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        await frame(ws)
        run_sql("UPDATE question SET hidden_at = now() WHERE id = :id", id=question["id"])
        assert (await frame(ws, timeout=1))["removed"] is True

    async def gone() -> bool:
        return (await browser.get(f"/poll/{question['id']}")).status == 410

    await eventually(gone, timeout=1)


@pytest.mark.slow  # two app processes
async def test_hiding_in_one_process_closes_the_sockets_of_another(
    app_process, make_question, admin_password
):
    question = make_question("Watched elsewhere?")
    processes = app_process(), app_process()
    for process in processes:
        process.wait_serving()
    first, second = (process.url for process in processes)
    async with (
        aiohttp.ClientSession(base_url=first, cookie_jar=aiohttp.CookieJar(unsafe=True)) as operator,
        aiohttp.ClientSession() as watcher,
        watcher.ws_connect(f"{second}/poll/{question['id']}/live") as ws,
    ):
        await frame(ws, timeout=5)
        signed_in = await operator.post(
            "/admin/sign-in", data={"password": admin_password}, allow_redirects=False
        )
        assert signed_in.status == 303
        hidden = await operator.post(f"/admin/poll/{question['id']}", data=HIDE, allow_redirects=False)
        assert hidden.status == 303
        assert await frame(ws, timeout=2) == {"question_id": question["id"], "deleted": True, "removed": True}
        assert (await ws.receive(timeout=2)).type is aiohttp.WSMsgType.CLOSE
        assert (await watcher.get(f"{second}/poll/{question['id']}/results")).status == 410


async def test_a_hidden_date_poll_answers_410_on_its_grid_answer_form_calendar_and_files(
    client, make_date_poll, sign_in, new_browser, sync_engine
):
    poll = await make_date_poll(question_text="Buy cheap pills?")
    first, second = poll["options"]
    participant = new_browser(client)
    answered = await participant.post(
        f"/poll/{poll['id']}/answer",
        data={"name": "Ada", f"answer-{first}": "yes", f"answer-{second}": "if_need_be"},
        allow_redirects=False,
    )
    assert answered.status == 303
    settled = await client.post(poll["manage"], data={"action": "settle", "option": str(first)})
    assert settled.status == 200
    assert (await client.get(f"/poll/{poll['id']}/event.ics")).status == 200  # before hiding
    await sign_in(client)
    hidden = await client.post(f"/admin/poll/{poll['id']}", data=HIDE, allow_redirects=False)
    assert hidden.status == 303
    reader = new_browser(client)
    for page in ("", "/results", "/present", "/event.ics"):
        await assert_removed(await reader.get(f"/poll/{poll['id']}{page}"))
    # The participant's own row (a voter cookie) is no way round it, nor is changing or removing it.
    await assert_removed(await participant.get(f"/poll/{poll['id']}"))
    changed = await participant.post(
        f"/poll/{poll['id']}/answer",
        data={"name": "Ada", f"answer-{first}": "no", f"answer-{second}": "no"},
        allow_redirects=False,
    )
    await assert_removed(changed)
    await assert_removed(
        await participant.post(f"/poll/{poll['id']}/answer", data={"remove": "yes"}, allow_redirects=False)
    )
    with sync_engine.connect() as conn:
        counts = conn.exec_driver_sql(
            f"SELECT votes, if_need_be FROM choice WHERE question_id = {poll['id']} ORDER BY id"
        ).all()
    assert [tuple(c) for c in counts] == [(1, 0), (0, 1)]  # nothing changed
    for export in EXPORTS:
        assert (await client.get(poll["manage"] + export)).status == 410
