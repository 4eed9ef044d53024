"""GET /healthz: 200 while the database answers, a quick 503 when it does not."""

import asyncio
import time

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.pages import health

BOUND = health.TIMEOUT + 1.0


# `stoppable_database` comes first in the tests' arguments so that it outlives the app:
# the app closes its pool and listener on a running server, as it would in production.


async def probe(client) -> tuple[int, str, float]:
    started = time.monotonic()
    response = await client.get("/healthz")
    return response.status, await response.text(), time.monotonic() - started


async def test_healthz_is_ok_while_the_database_answers(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "ok\n"
    assert response.headers["Cache-Control"] == "no-store"
    assert client.app.router["healthz"].url_for().path == "/healthz"


async def test_healthz_is_503_quickly_when_database_stops_and_recovers_by_itself(
    stoppable_database, aiohttp_client, config
):
    config["database"]["url"] = stoppable_database.url
    client = await aiohttp_client(init_app(config=config))
    assert (await probe(client))[:2] == (200, "ok\n")

    stoppable_database.stop()
    for _ in range(3):  # the pooled connection that died, then fresh connections refused
        status, text, elapsed = await probe(client)
        assert (status, text) == (503, "database unavailable\n")
        assert elapsed < BOUND

    stoppable_database.start()
    deadline = time.monotonic() + 10
    while (status := (await probe(client))[0]) != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert status == 200, "the app recovers without a restart once PostgreSQL is back"


async def test_healthz_is_503_within_its_bound_when_the_database_hangs(
    stoppable_database, aiohttp_client, config
):
    config["database"]["url"] = stoppable_database.url
    client = await aiohttp_client(init_app(config=config))
    assert (await probe(client))[0] == 200

    stoppable_database.freeze()  # accepts, never answers: a lost network, a stuck server
    try:
        for _ in range(2):  # the pooled connection's query, then a fresh connection
            status, text, elapsed = await probe(client)
            assert (status, text) == (503, "database unavailable\n")
            assert health.TIMEOUT <= elapsed < BOUND
    finally:
        stoppable_database.thaw()
    deadline = time.monotonic() + 10
    while (status := (await probe(client))[0]) != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert status == 200
