"""Live results of a ranked poll: each frame carries the count's version, which changes
with every ranking, and a ranking changed with SQL reaches the page and the socket within
a second (vote's triggers notify on `rank` too)."""

import re
import time

from live_frames import frame

from aiohttpdemo_polls.web.cache import cache_key


def version_on(page: str) -> str:
    match = re.search(r'data-ranked-version="([0-9a-f]*)"', page)
    assert match, "no ranked count on the page"
    return match[1]


async def rank(browser, poll_id: int, choice_ids: list[int], ranking: list[int]):
    data = {f"rank-{c}": str(ranking.index(c) + 1) if c in ranking else "" for c in choice_ids}
    response = await browser.post(f"/poll/{poll_id}/rank", data=data, allow_redirects=False)
    assert response.status == 302


async def test_a_ranking_moves_the_live_count_and_the_page_names_the_same_version(
    client, anonymous, make_question
):
    poll = make_question(choices=("Ann", "Ben", "Cy"), kind="ranked")
    _, ben, cy = poll["choices"]
    results = f"/poll/{poll['id']}/results"
    async with client.ws_connect(f"/poll/{poll['id']}/live") as ws:
        first = await frame(ws)
        assert first["ranked"] == version_on(await (await anonymous.get(results)).text())
        await rank(anonymous, poll["id"], poll["choices"], [ben, cy])
        update = await frame(ws, timeout=2)
    assert update["ranked"] != first["ranked"]
    assert update["ranked"] == version_on(await (await anonymous.get(results)).text())


async def test_a_ranking_reordered_with_sql_shows_on_the_page_and_socket_within_a_second(
    client, anonymous, make_question, run_sql, settled
):
    poll = make_question(choices=("Ann", "Ben", "Cy"), kind="ranked")
    ann, ben, cy = poll["choices"]
    for ranking in ([ann, ben], [ann, cy], [ben, ann]):
        await rank(anonymous, poll["id"], poll["choices"], ranking)
    await settled()
    results = f"/poll/{poll['id']}/results"
    before = await (await anonymous.get(results)).text()
    assert "Winner: Ann" in before
    assert ("results", poll["id"], f"{client.host}:{client.port}", "en") in client.app[cache_key]
    async with client.ws_connect(f"/poll/{poll['id']}/live") as ws:
        snapshot = await frame(ws)
        # Two voters put Ben first: he now leads in round one.
        committed = run_sql(
            "UPDATE vote SET rank = CASE choice_id WHEN :ben THEN 1 ELSE 2 END "
            "WHERE question_id = :poll AND voter IN (SELECT voter FROM vote WHERE choice_id = :ben)",
            ben=ben,
            poll=poll["id"],
        )
        update = await frame(ws, timeout=1)
        socket_took = time.monotonic() - committed
        page = await (await anonymous.get(results)).text()
        page_took = time.monotonic() - committed
    assert update["ranked"] != snapshot["ranked"] and socket_took < 1.0
    assert "Winner: Ben" in page and page_took < 1.0
