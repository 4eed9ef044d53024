"""Counting a big ranked poll never holds up the event loop: the rankings come grouped in
SQL as one value, and are parsed and counted in a thread (web/ranked.py)."""

import asyncio
import time

import pytest

from bench.ranked import RANKED_BALLOTS, seed_ranked_poll

pytestmark = pytest.mark.slow
MAX_STALL = 0.050  # seconds the loop may go without running a ready task


async def longest_stall(done: asyncio.Event) -> float:
    """The longest time the loop took to come back to this task, which asks every 1 ms."""
    longest = 0.0
    while not done.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        longest = max(longest, time.perf_counter() - before - 0.001)
    return longest


async def test_serving_a_100000_ballot_ranked_polls_results_never_stalls_the_loop(
    client, anonymous, new_browser, database_url, settled
):
    question_id, choice_ids = await asyncio.to_thread(seed_ranked_poll, database_url, RANKED_BALLOTS)
    await settled()
    done = asyncio.Event()
    watch = asyncio.create_task(longest_stall(done))
    try:
        page = await (await anonymous.get(f"/poll/{question_id}/results")).text()  # counted now
        api = await (await anonymous.get(f"/api/polls/{question_id}")).json()
        # A new ranking drops the cached count: it is counted again, as the next reader asks.
        places = {f"rank-{choice_ids[-1]}": "1"}
        voted = await new_browser(client).post(
            f"/poll/{question_id}/rank", data=places, allow_redirects=False
        )
        again = await asyncio.gather(*(anonymous.get(f"/poll/{question_id}/results") for _ in range(5)))
        pages = [await response.text() for response in again]
    finally:
        done.set()
        stall = await watch
    assert voted.status == 302
    assert api["count"]["ballots"] == RANKED_BALLOTS
    assert f"{RANKED_BALLOTS:,} ballots." in page
    assert all(f"{RANKED_BALLOTS + 1:,} ballots." in p for p in pages)
    print(f"longest event loop stall: {stall * 1000:.1f} ms")
    assert stall < MAX_STALL, f"the event loop stalled for {stall * 1000:.0f} ms"
