"""The page cache: pages come from memory, yet every change shows on the next page load."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web.cache import Cache, cache_key
from aiohttpdemo_polls.web.database import changes_key


async def page(session, path: str) -> str:
    response = await session.get(path)
    assert response.status == 200
    return await response.text()


async def test_pages_are_served_from_memory_after_the_first_load(client, anonymous, make_question, settled):
    question = make_question("Cached?")
    await settled()
    assert "Cached?" in await page(anonymous, f"/poll/{question['id']}")
    assert "Cached?" in await page(anonymous, "/")
    cached = len(client.app[cache_key])
    assert cached >= 3  # the poll's content, its form page, and index page 1
    assert "Cached?" in await page(anonymous, f"/poll/{question['id']}")
    assert len(client.app[cache_key]) == cached


async def test_vote_shows_on_the_next_anonymous_results_load(client, anonymous, make_question):
    question = make_question(choices=("Yes", "No"))
    results = f"/poll/{question['id']}/results"
    assert '<span class="total-votes">0</span>' in await page(anonymous, results)
    response = await client.post(f"/poll/{question['id']}/vote", data={"choice": question["choices"][0]})
    assert response.status == 200
    assert '<span class="total-votes">1</span>' in await page(anonymous, results)


async def test_own_vote_shows_right_after_redirect_even_with_a_warm_cache(client, anonymous, make_question):
    question = make_question(choices=("Yes", "No"))
    await page(anonymous, f"/poll/{question['id']}/results")  # warm the shared page
    response = await client.post(f"/poll/{question['id']}/vote", data={"choice": question["choices"][1]})
    assert response.url.path == f"/poll/{question['id']}/results"
    text = await response.text()
    assert "(your vote)" in text
    assert '<span class="total-votes">1</span>' in text


async def test_change_committed_elsewhere_shows_once_its_notice_arrives(
    eventually, client, anonymous, make_question, run_sql
):
    question = make_question("Before the edit")
    assert "Before the edit" in await page(anonymous, f"/poll/{question['id']}")
    assert "Before the edit" in await page(anonymous, "/")
    # Another process (here: plain SQL) edits the poll; the schema's triggers tell the app.
    run_sql(
        "UPDATE question SET question_text = 'After the edit' WHERE id = :id",
        id=question["id"],
    )

    async def shows_edit() -> bool:
        return "After the edit" in await page(anonymous, f"/poll/{question['id']}") and "After the edit" in (
            await page(anonymous, "/")
        )

    await eventually(shows_edit)


async def test_poll_closed_elsewhere_shows_results_instead_of_the_form(
    eventually, client, anonymous, make_question, run_sql
):
    question = make_question()
    assert 'name="choice"' in await page(anonymous, f"/poll/{question['id']}")
    run_sql("UPDATE question SET closed_at = now() WHERE id = :id", id=question["id"])

    async def closed() -> bool:
        return "Voting closed" in await page(anonymous, f"/poll/{question['id']}")

    await eventually(closed)
    response = await anonymous.post(f"/poll/{question['id']}/vote", data={"choice": question["choices"][0]})
    assert response.status == 409


async def test_poll_reaching_closes_at_closes_without_any_notice(
    eventually, client, anonymous, make_question
):
    closes_at = datetime.now(UTC) + timedelta(seconds=1)
    question = make_question(closes_at=closes_at)
    assert 'name="choice"' in await page(anonymous, f"/poll/{question['id']}")
    assert "Closed" not in await page(anonymous, "/")

    async def closed() -> bool:
        return "Voting closed" in await page(anonymous, f"/poll/{question['id']}")

    await eventually(closed)
    assert "closed-mark" in await page(anonymous, "/")


async def test_scheduled_poll_appears_at_its_pub_date_without_any_notice(
    eventually, client, anonymous, make_question
):
    make_question("Already out")
    make_question("Coming soon", days=1.5 / 86400)  # published 1.5 s from now
    assert "Coming soon" not in await page(anonymous, "/")

    async def listed() -> bool:
        return "Coming soon" in await page(anonymous, "/")

    await eventually(listed)


async def test_lost_listener_bypasses_and_empties_the_cache(
    eventually, client, anonymous, make_question, run_sql, unnoticed, settled
):
    question = make_question("Watched")
    await settled()
    await page(anonymous, f"/poll/{question['id']}")
    assert ("poll", question["id"], f"{client.host}:{client.port}", "en") in client.app[cache_key]
    bus = client.app[changes_key]
    pid = bus.backend_pid
    run_sql("SELECT pg_terminate_backend(:pid)", pid=pid)

    async def reconnected() -> bool:
        return bus.listening and bus.backend_pid != pid

    await eventually(reconnected)
    # A change whose notice was lost while the listener was away shows all the same.
    with unnoticed() as conn:
        conn.execute(sa.text("UPDATE question SET question_text = 'Unseen' WHERE id = :id"), question)
    assert "Unseen" in await page(anonymous, f"/poll/{question['id']}")


async def test_load_running_when_its_poll_changes_is_not_kept():
    cache = Cache()
    release = asyncio.Event()

    async def slow_load() -> tuple[str, float]:
        await release.wait()
        return "old", float("inf")

    pending = asyncio.ensure_future(cache.get(("poll", 1), slow_load))
    await asyncio.sleep(0)
    cache.changed(1)
    release.set()
    assert await pending == "old"  # those who asked before the change may see it

    async def fresh() -> tuple[str, float]:
        return "new", float("inf")

    assert await cache.get(("poll", 1), fresh) == "new"


async def test_concurrent_misses_share_one_load():
    cache = Cache()
    loads = 0

    async def load() -> tuple[str, float]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return "page", float("inf")

    assert await asyncio.gather(*(cache.get(("index", None, 1), load) for _ in range(20))) == ["page"] * 20
    assert loads == 1


async def test_invalidating_a_poll_drops_its_pages_and_every_index_page_only():
    cache = Cache()

    async def value(v):
        async def load() -> tuple[Any, float]:
            return v, float("inf")

        return load

    for key in [("poll", 1), ("results", 1), ("poll", 2), ("index", None, 1), ("index", None, 2)]:
        await cache.get(key, await value(key))
    cache.changed(1)
    assert len(cache) == 1  # only poll 2's page is left

    async def never() -> tuple[Any, float]:
        raise AssertionError("poll 2 should still be cached")

    assert await cache.get(("poll", 2), never) == ("poll", 2)


async def test_untrusted_cache_loads_every_time_and_keeps_nothing():
    cache = Cache()
    cache.trusted = lambda: False
    loads = 0

    async def load() -> tuple[int, float]:
        nonlocal loads
        loads += 1
        return loads, float("inf")

    assert [await cache.get(("poll", 1), load) for _ in range(3)] == [1, 2, 3]
    assert len(cache) == 0


async def test_expired_entry_is_loaded_again():
    cache = Cache()
    loads = 0

    async def load() -> tuple[int, float]:
        nonlocal loads
        loads += 1
        return loads, time.time() + 0.05

    assert await cache.get(("poll", 1), load) == 1
    assert await cache.get(("poll", 1), load) == 1
    await asyncio.sleep(0.06)
    assert await cache.get(("poll", 1), load) == 2


async def test_vote_in_one_process_shows_on_the_other_processs_cached_page(
    eventually, aiohttp_client, client, config, make_question, new_browser
):
    """Two app instances (as two workers): each has its own cache; notices keep both right."""
    other = await aiohttp_client(init_app(config=config))
    question = make_question(choices=("Yes", "No"))
    results = f"/poll/{question['id']}/results"
    reader = new_browser(other)
    assert '<span class="total-votes">0</span>' in await page(reader, results)  # now cached there
    response = await client.post(f"/poll/{question['id']}/vote", data={"choice": question["choices"][0]})
    assert response.status == 200

    async def shows_vote() -> bool:
        return '<span class="total-votes">1</span>' in await page(reader, results)

    await eventually(shows_vote)
