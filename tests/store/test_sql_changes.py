"""Changes made with plain SQL, as psql would, reach a running app's pages and live sockets
within a second of their commit: the schema's triggers notify, whoever writes."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from live_frames import frame

from aiohttpdemo_polls.web.cache import cache_key
from aiohttpdemo_polls.web.database import changes_key

Check = Callable[[], Awaitable[bool]]


async def seconds_until(check: Check, since: float) -> float:
    """Poll `check` until it holds (with a generous deadline); the seconds since `since`."""
    while not await check():
        assert time.monotonic() - since < 10, "the change never showed"
        await asyncio.sleep(0.01)
    return time.monotonic() - since


async def get(session: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    async with session.get(path) as response:
        return response.status, await response.text()


async def cached(client, anonymous, path: str, key: tuple) -> str:
    """Load a page so that the app caches it, and make sure it did (pages are kept per host
    and language; this client sends no Accept-Language, so English)."""
    status, page = await get(anonymous, path)
    assert status == 200
    assert (*key, f"{client.host}:{client.port}", "en") in client.app[cache_key]
    return page


async def test_poll_inserted_with_sql_appears_on_the_index_within_a_second(
    client, anonymous, run_sql, settled
):
    await settled()
    assert "No polls are available." in await cached(client, anonymous, "/", ("index", None, 1))
    committed = run_sql(
        "WITH q AS (INSERT INTO question (question_text) VALUES ('Made in psql?') RETURNING id) "
        "INSERT INTO choice (question_id, choice_text) SELECT id, c FROM q, unnest(ARRAY['Yes', 'No']) AS c",
    )

    async def listed() -> bool:
        return "Made in psql?" in (await get(anonymous, "/"))[1]

    assert await seconds_until(listed, committed) < 1.0


async def test_votes_changed_with_sql_reach_the_results_page_and_a_live_socket_within_a_second(
    client, anonymous, run_sql, make_question, settled
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    await settled()
    results = f"/poll/{question['id']}/results"
    assert '<span class="total-votes">0</span>' in await cached(
        client, anonymous, results, ("results", question["id"])
    )
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 0
        committed = run_sql("UPDATE choice SET votes = CASE id WHEN :yes THEN 5 ELSE 2 END", yes=yes)
        update = await frame(ws)
        socket_took = time.monotonic() - committed

        async def shown() -> bool:
            return '<span class="total-votes">7</span>' in (await get(anonymous, results))[1]

        page_took = await seconds_until(shown, committed)
    assert [(c["id"], c["votes"]) for c in update["choices"]] == [(yes, 5), (no, 2)]
    assert socket_took < 1.0
    assert page_took < 1.0


async def test_question_renamed_with_sql_shows_on_its_pages_and_the_index_within_a_second(
    client, anonymous, run_sql, make_question, settled
):
    question = make_question("Old name?")
    await settled()
    path = f"/poll/{question['id']}"
    assert "Old name?" in await cached(client, anonymous, path, ("poll", question["id"]))
    assert "Old name?" in await cached(client, anonymous, "/", ("index", None, 1))
    present = f"{path}/present"
    assert "Old name?" in await cached(client, anonymous, present, ("present", question["id"], True))
    committed = run_sql("UPDATE question SET question_text = 'New name?' WHERE id = :id", id=question["id"])

    async def renamed() -> bool:
        pages = [(await get(anonymous, where))[1] for where in (path, "/", present)]
        return all("New name?" in page and "Old name?" not in page for page in pages)

    assert await seconds_until(renamed, committed) < 1.0


async def test_poll_deleted_with_sql_is_a_404_and_leaves_the_index_within_a_second(
    client, anonymous, run_sql, make_question, settled
):
    make_question("Staying?")
    question = make_question("Going?")
    await settled()
    path = f"/poll/{question['id']}"
    assert "Going?" in await cached(client, anonymous, path, ("poll", question["id"]))
    assert "Going?" in await cached(client, anonymous, "/", ("index", None, 1))
    committed = run_sql("DELETE FROM question WHERE id = :id", id=question["id"])

    async def gone() -> bool:
        index = (await get(anonymous, "/"))[1]
        return (await get(anonymous, path))[0] == 404 and "Going?" not in index and "Staying?" in index

    assert await seconds_until(gone, committed) < 1.0


async def test_truncate_with_sql_empties_every_cached_page_within_a_second(
    client, anonymous, run_sql, make_question, settled
):
    question = make_question("Soon truncated?")
    await settled()
    path = f"/poll/{question['id']}"
    await cached(client, anonymous, path, ("poll", question["id"]))
    await cached(client, anonymous, "/", ("index", None, 1))
    committed = run_sql("TRUNCATE question, choice, ballot, vote, report")  # every table naming a poll

    async def emptied() -> bool:
        index = (await get(anonymous, "/"))[1]
        return (await get(anonymous, path))[0] == 404 and "No polls are available." in index

    assert await seconds_until(emptied, committed) < 1.0


async def test_choice_moved_to_another_poll_with_sql_changes_both(eventually, client, run_sql, make_question):
    first, second = make_question(), make_question()
    heard: list[int | None] = []
    client.app[changes_key].subscribe(heard.append)
    run_sql(
        "UPDATE choice SET question_id = :to WHERE id = :id",
        to=second["id"],
        id=first["choices"][0],
    )

    async def both_heard() -> bool:
        return {first["id"], second["id"]} <= set(heard)

    await eventually(both_heard)


async def test_page_cached_in_one_process_shows_a_vote_taken_by_another_within_a_second(
    client, anonymous, app_process, make_question, settled
):
    question = make_question(choices=("Yes", "No"))
    await settled()
    results = f"/poll/{question['id']}/results"
    assert '<span class="total-votes">0</span>' in await cached(
        client, anonymous, results, ("results", question["id"])
    )
    other = app_process()
    other.wait_serving()
    async with aiohttp.ClientSession(base_url=other.url, cookie_jar=aiohttp.DummyCookieJar()) as voter:
        response = await voter.post(
            f"/poll/{question['id']}/vote",
            data={"choice": str(question["choices"][0])},
            allow_redirects=False,
        )
        committed = time.monotonic()  # the other process answers once the vote is committed
        assert response.status == 302

    async def shown() -> bool:
        return '<span class="total-votes">1</span>' in (await get(anonymous, results))[1]

    assert await seconds_until(shown, committed) < 1.0
