"""The retention job in the app (web/retention.py): opened and closed with it, and what it
deletes leaves the caches and the live pages at once."""

from datetime import UTC, datetime, timedelta

import aiohttp
from live_frames import frame

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web.retention import sweeper_key


async def test_the_app_runs_the_retention_job_for_its_lifetime(aiohttp_client, config):
    client = await aiohttp_client(init_app(config={**config, "retention": {"closed_days": 30}}))
    sweeper = client.app[sweeper_key]
    assert sweeper.closed_days == 30
    assert sweeper._task is not None and not sweeper._task.done()
    await client.close()
    assert sweeper._task is None


async def test_a_poll_the_job_deletes_leaves_its_cached_pages_and_live_watchers_at_once(
    aiohttp_client, config, make_question, settled
):
    client = await aiohttp_client(init_app(config={**config, "retention": {"closed_days": 30}}))
    old = make_question("Lunch in March?", days=-90, closed_at=datetime.now(UTC) - timedelta(days=31))
    kept = make_question("Lunch in May?", days=-90, closed_at=datetime.now(UTC) - timedelta(days=29))
    await settled()
    for poll in (old, kept):  # now in the page cache
        assert (await client.get(f"/poll/{poll['id']}/results")).status == 200
    async with client.ws_connect(f"/poll/{old['id']}/live") as ws:
        assert (await frame(ws))["closed"] is True
        assert await client.app[sweeper_key].sweep_polls() == [old["id"]]
        assert await frame(ws) == {"question_id": old["id"], "deleted": True}
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
    assert (await client.get(f"/poll/{old['id']}/results")).status == 404
    assert (await client.get(f"/poll/{kept['id']}/results")).status == 200
    index = await (await client.get("/")).text()
    assert "Lunch in March?" not in index and "Lunch in May?" in index
