"""Faults: PostgreSQL going away under the running app, and clients vanishing mid-request.

Each test that stops PostgreSQL uses a server of its own (`stoppable_database`); the
shared test server never stops.
"""

import asyncio
import time
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import db
from aiohttpdemo_polls.main import init_app

# The promise: while PostgreSQL is down, pages answer the app's 503 page this fast.
DOWN_ANSWER_BOUND = 2.0
RECOVERY_BOUND = 15.0  # seconds for the app to serve again once PostgreSQL is back


def is_503_page(text: str) -> bool:
    """The app's own 503 page (templates/error.html in the site's layout), no traceback."""
    return (
        'Service Unavailable <span class="status">(503)</span>' in text
        and "Back to all polls" in text
        and "Traceback" not in text
    )


def seed(url: str) -> dict[str, Any]:
    """A published poll with two choices on the database at `url`."""
    engine = sa.create_engine(url, future=True)
    with engine.begin() as conn:
        question_id = conn.execute(
            db.question.insert()
            .values(question_text="Still there?", pub_date=sa.func.now() - sa.text("interval '1 day'"))
            .returning(db.question.c.id)
        ).scalar_one()
        choices = (
            conn.execute(
                db.choice.insert()
                .values([{"question_id": question_id, "choice_text": t} for t in ("Yes", "No")])
                .returning(db.choice.c.id)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return {"id": question_id, "choices": sorted(choices)}


def counters_match_vote_rows(url: str) -> tuple[int, bool]:
    """(total votes counted, whether every counter equals its `vote` rows) at `url`."""
    engine = sa.create_engine(url, future=True)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT coalesce(sum(votes), 0) FROM choice")).scalar_one()
        mismatched = conn.execute(
            sa.text(
                "SELECT count(*) FROM choice c WHERE c.votes <> "
                "(SELECT count(*) FROM vote v WHERE v.choice_id = c.id)"
            )
        ).scalar_one()
        half_ballots = conn.execute(
            sa.text(
                "SELECT count(*) FROM ballot b WHERE NOT EXISTS "
                "(SELECT 1 FROM vote v WHERE v.question_id = b.question_id AND v.voter = b.voter)"
            )
        ).scalar_one()
    engine.dispose()
    return total, mismatched == 0 and half_ballots == 0


async def timed(call) -> tuple[aiohttp.ClientResponse, str, float]:
    started = time.monotonic()
    async with asyncio.timeout(10):  # a hung answer fails the test instead of hanging it
        response = await call
        text = await response.text()
    return response, text, time.monotonic() - started


async def next_frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return message.json()


@pytest.mark.slow  # a PostgreSQL server of its own: initdb, stop, start
async def test_pages_answer_503_quickly_while_postgresql_is_down_then_recover(
    aiohttp_client, config, stoppable_database
):
    poll = seed(stoppable_database.url)
    config["database"]["url"] = stoppable_database.url
    client = await aiohttp_client(init_app(config=config))
    pid = poll["id"]
    assert (await client.get(f"/poll/{pid}/results")).status == 200
    watcher = await client.ws_connect(f"/poll/{pid}/live")
    assert (await next_frame(watcher))["total"] == 0

    requests = {
        "index": lambda: client.get("/"),
        "poll": lambda: client.get(f"/poll/{pid}"),
        "results": lambda: client.get(f"/poll/{pid}/results"),
        "vote": lambda: client.post(
            f"/poll/{pid}/vote", data={"choice": str(poll["choices"][0])}, allow_redirects=False
        ),
        "live": lambda: client.get(f"/poll/{pid}/live"),
        "healthz": lambda: client.get("/healthz"),
    }
    stoppable_database.stop()
    answers = {}
    # Twice round: first the pooled connections that died with the server, then new
    # connections that the missing server refuses.
    for round_ in range(2):
        for name, request in requests.items():
            response, text, elapsed = await timed(request())
            answers[(round_, name)] = (response.status, round(elapsed, 3))
            assert response.status == 503, (name, response.status, text[:300])
            assert elapsed < DOWN_ANSWER_BOUND, (name, elapsed)
            if name != "healthz":
                assert is_503_page(text), name
            assert "Traceback" not in text

    stoppable_database.start()
    started = time.monotonic()
    while (await client.get(f"/poll/{pid}")).status != 200:
        assert time.monotonic() - started < RECOVERY_BOUND, "the app did not recover by itself"
        await asyncio.sleep(0.05)

    # Everything works again without a restart, the live watcher included.
    response = await client.post(
        f"/poll/{pid}/vote", data={"choice": str(poll["choices"][1])}, allow_redirects=False
    )
    assert response.status == 302
    deadline = time.monotonic() + RECOVERY_BOUND
    while (frame := await next_frame(watcher, timeout=RECOVERY_BOUND))["total"] != 1:
        assert time.monotonic() < deadline, frame
    assert [c["votes"] for c in frame["choices"]] == [0, 1]
    await watcher.close()
    assert counters_match_vote_rows(stoppable_database.url) == (1, True)


@pytest.mark.slow  # a PostgreSQL server of its own: initdb, stop, start
async def test_nothing_hangs_past_the_timeout_when_postgresql_hangs(
    aiohttp_client, config, stoppable_database
):
    poll = seed(stoppable_database.url)
    config["database"]["url"] = stoppable_database.url
    config["database"]["timeout"] = 1.0
    client = await aiohttp_client(init_app(config=config))
    pid, choice = poll["id"], str(poll["choices"][0])
    assert (await client.get(f"/poll/{pid}")).status == 200

    stoppable_database.freeze()  # accepts connections, never answers: a lost network
    try:
        # A vote must reach the database: a 503 once the timeout passes (the pooled
        # connection's query, then a fresh connection's login). Pages may come from the
        # app's memory (still true: nothing can change while the database is stuck),
        # else they are 503 pages too; none waits longer than the timeout, none is a 500.
        requests = [
            (
                "vote",
                lambda: client.post(f"/poll/{pid}/vote", data={"choice": choice}, allow_redirects=False),
            ),
            ("vote again", lambda: client.post(f"/poll/{pid}/vote", data={"choice": choice})),
            ("poll", lambda: client.get(f"/poll/{pid}")),
            ("results", lambda: client.get(f"/poll/{pid}/results")),
            ("index", lambda: client.get("/")),
        ]
        for name, request in requests:
            response, text, elapsed = await timed(request())
            assert elapsed < 1.0 + DOWN_ANSWER_BOUND, (name, elapsed)
            if name.startswith("vote"):
                assert response.status == 503, (name, text[:300])
            assert response.status in (200, 503), (name, text[:300])
            if response.status == 503:
                assert is_503_page(text), name
    finally:
        stoppable_database.thaw()
    started = time.monotonic()
    while (
        await client.post(f"/poll/{pid}/vote", data={"choice": choice}, allow_redirects=False)
    ).status != 302:
        assert time.monotonic() - started < RECOVERY_BOUND, "the app did not recover by itself"
        await asyncio.sleep(0.05)
    assert counters_match_vote_rows(stoppable_database.url) == (1, True)


def test_database_timeout_defaults_to_five_seconds_and_must_be_positive(tmp_path):
    from aiohttpdemo_polls import settings

    assert settings.load(settings.DEFAULT_CONFIG, {})["database"]["timeout"] == 5
    bad = tmp_path / "bad.yaml"
    bad.write_text("database:\n  timeout: 0\n")
    with pytest.raises(settings.ConfigError, match=r"database\.timeout"):
        settings.load(bad, {})
