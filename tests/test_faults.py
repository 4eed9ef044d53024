"""Faults: PostgreSQL going away under the running app, and clients vanishing mid-request.

Each test that stops PostgreSQL uses a server of its own (`stoppable_database`); the
shared test server never stops.
"""

import asyncio
import collections
import logging
import secrets
import time
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import stored
from aiohttp import web
from live_frames import frame
from relay import Relay

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.store import connections, making, schema
from aiohttpdemo_polls.web import voting
from aiohttpdemo_polls.web.database import changes_key, engine_key
from aiohttpdemo_polls.web.voting import VOTER_COOKIE

# An answer takes milliseconds; the bound is generous for a busy machine and still far
# below DOWN_TEST_TIMEOUT, the database timeout these tests set, so waiting it out fails.
DOWN_ANSWER_BOUND = 5.0
DOWN_TEST_TIMEOUT = 30.0
RECOVERY_BOUND = 15.0  # seconds for the app to serve again once PostgreSQL is back
# A hung database: the answer comes once the 1 s timeout passes, plus this slack; together
# still below the default 5 s, so a timeout from the config that is not applied fails.
HANG_TIMEOUT = 1.0
HANG_SLACK = 3.0


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
            schema.question.insert()
            .values(question_text="Still there?", pub_date=sa.func.now() - sa.text("interval '1 day'"))
            .returning(schema.question.c.id)
        ).scalar_one()
        choices = (
            conn.execute(
                schema.choice.insert()
                .values([{"question_id": question_id, "choice_text": t} for t in ("Yes", "No")])
                .returning(schema.choice.c.id)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return {"id": question_id, "choices": sorted(choices)}


def votes_counted(url: str) -> int:
    engine = sa.create_engine(url, future=True)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT coalesce(sum(votes), 0) FROM choice")).scalar_one()
    engine.dispose()
    return total


async def timed(call) -> tuple[aiohttp.ClientResponse, str, float]:
    started = time.monotonic()
    async with asyncio.timeout(20):  # a hung answer fails the test instead of hanging it
        response = await call
        text = await response.text()
    return response, text, time.monotonic() - started


@pytest.mark.slow  # a PostgreSQL server of its own: initdb, stop, start
async def test_pages_answer_503_quickly_while_postgresql_is_down_then_recover(
    aiohttp_client, config, stoppable_database, eventually, vote_rows_match_counters
):
    poll = seed(stoppable_database.url)
    config["database"]["url"] = stoppable_database.url
    config["database"]["timeout"] = DOWN_TEST_TIMEOUT
    client = await aiohttp_client(init_app(config=config))
    pid = poll["id"]
    assert (await client.get(f"/poll/{pid}/results")).status == 200
    watcher = await client.ws_connect(f"/poll/{pid}/live")
    assert (await frame(watcher))["total"] == 0

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

    async def serves_again() -> bool:
        return (await client.get(f"/poll/{pid}")).status == 200

    await eventually(serves_again, timeout=RECOVERY_BOUND)  # by itself, without a restart

    # Everything works again without a restart, the live watcher included.
    response = await client.post(
        f"/poll/{pid}/vote", data={"choice": str(poll["choices"][1])}, allow_redirects=False
    )
    assert response.status == 302
    deadline = time.monotonic() + RECOVERY_BOUND
    while (update := await frame(watcher, timeout=RECOVERY_BOUND))["total"] != 1:
        assert time.monotonic() < deadline, update
    assert [c["votes"] for c in update["choices"]] == [0, 1]
    await watcher.close()
    assert votes_counted(stoppable_database.url) == 1
    assert vote_rows_match_counters(stoppable_database.url)


@pytest.mark.slow  # a PostgreSQL server of its own: initdb, stop, start
async def test_nothing_hangs_past_the_timeout_when_postgresql_hangs(
    aiohttp_client, config, stoppable_database, eventually, vote_rows_match_counters
):
    poll = seed(stoppable_database.url)
    config["database"]["url"] = stoppable_database.url
    config["database"]["timeout"] = HANG_TIMEOUT
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
            assert elapsed < HANG_TIMEOUT + HANG_SLACK, (name, elapsed)
            if name.startswith("vote"):
                # Not counted (503), or sent and never answered (202: it may have counted).
                assert response.status in (202, 503), (name, text[:300])
                if response.status == 202:
                    assert voting.VOTE_UNKNOWN in text
            else:
                assert response.status in (200, 503), (name, text[:300])
            if response.status == 503:
                assert is_503_page(text), name
    finally:
        stoppable_database.thaw()

    async def counts_again() -> bool:
        response = await client.post(f"/poll/{pid}/vote", data={"choice": choice}, allow_redirects=False)
        return response.status == 302

    await eventually(counts_again, timeout=RECOVERY_BOUND)  # by itself, without a restart
    # The ballots sent while it hung reached it only past their deadline: refused, not counted.
    assert votes_counted(stoppable_database.url) == 1
    assert vote_rows_match_counters(stoppable_database.url)


def test_database_timeout_defaults_to_five_seconds_and_must_be_positive(tmp_path):
    from aiohttpdemo_polls import settings

    assert settings.load(settings.DEFAULT_CONFIG, {})["database"]["timeout"] == 5
    bad = tmp_path / "bad.yaml"
    bad.write_text("database:\n  timeout: 0\n")
    with pytest.raises(settings.ConfigError, match=r"database\.timeout"):
        settings.load(bad, {})


async def test_vote_whose_connection_is_ended_mid_statement_is_sent_again_and_counted_once(
    client, new_browser, make_question, vote, votes_of, end_blocked_backend, vote_rows_match_counters
):
    """A terminated server connection keeps nothing of its transaction: the writer sends the
    ballot once more on another connection, and the voter is answered as counted."""
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    # The vote's statement takes its poll FOR KEY SHARE: hold the poll so that it waits.
    voting = await end_blocked_backend(
        f"SELECT 1 FROM question WHERE id = {question['id']} FOR UPDATE",
        lambda: vote(new_browser(client), question["id"], yes),
    )
    response = await asyncio.wait_for(voting, 10)
    assert response.status == 302
    assert votes_of(question["id"])[yes] == 1
    assert vote_rows_match_counters()


async def test_page_whose_connection_is_lost_before_its_rows_are_read_is_the_503_page(
    aiohttp_client, config, sync_engine, eventually
):
    """psycopg2 calls the cursor closed once its connection is lost, also when the query had
    answered: that is the database going away (503, which a proxy passes on to another host),
    not a fault of the app (500). Seen with PgBouncer's server connections terminated."""
    app = init_app(config=config)

    async def lost_before_rows(request: web.Request) -> web.Response:
        async with request.app[engine_key].acquire() as conn:
            result = await conn.execute(sa.text("SELECT 1"))
            pid = await conn.connection.get_backend_pid()
            with sync_engine.connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

            async def noticed() -> bool:
                return conn.closed

            await eventually(noticed)
            await result.fetchall()
        return web.Response(text="rows read from a lost connection")

    app.router.add_get("/lost-before-rows", lost_before_rows)
    client = await aiohttp_client(app)
    response = await client.get("/lost-before-rows")
    assert response.status == 503
    assert is_503_page(await response.text())


STEP_ASIDE_BOUND = 2.5  # seconds to notice the database is away: "about a second", plus slack
BACK_BOUND = 3.0  # seconds to take requests again once it is back: 2, plus slack


@pytest.mark.slow  # a PostgreSQL server of its own, frozen and thawed
async def test_host_cut_off_from_the_database_steps_aside_at_once_and_comes_back_within_seconds(
    aiohttp_client, config, stoppable_database, new_browser, vote_rows_match_counters
):
    """A frozen server answers nothing, as across a lost network. Within about a second the
    host knows, and every request that needs the database is a 503 at once, not after the
    full timeout (a proxy then sends reads elsewhere); once the server is back, it serves."""
    poll = seed(stoppable_database.url)
    config["database"]["url"] = stoppable_database.url
    client = await aiohttp_client(init_app(config=config))  # database.timeout: 5 s
    pid, choice = poll["id"], str(poll["choices"][0])
    bus = client.app[changes_key]
    assert (await client.get(f"/poll/{pid}")).status == 200
    stoppable_database.freeze()
    try:
        frozen = time.monotonic()
        while not bus.away:
            assert time.monotonic() - frozen < STEP_ASIDE_BOUND, "the host did not notice"
            await asyncio.sleep(0.05)
        requests = {
            "index": lambda: client.get("/?page=2"),
            "poll": lambda: client.get(f"/poll/{pid + 1}"),
            "results": lambda: client.get(f"/poll/{pid}/results"),
            "vote": lambda: new_browser(client).post(
                f"/poll/{pid}/vote", data={"choice": choice}, allow_redirects=False
            ),
            "api": lambda: client.get(f"/api/polls/{pid}"),
        }
        for name, request in requests.items():
            response, text, elapsed = await timed(request())
            assert response.status == 503, (name, response.status, text[:300])
            assert elapsed < 0.5, (name, elapsed)  # at once, not after the 5 s timeout
            assert response.headers["Retry-After"] == "1"
        assert (await client.get("/robots.txt")).status == 200  # what needs no database goes on
    finally:
        stoppable_database.thaw()
    thawed = time.monotonic()
    while (await client.get(f"/poll/{pid}")).status != 200:
        assert time.monotonic() - thawed < BACK_BOUND, "the host did not come back"
        await asyncio.sleep(0.05)
    response = await new_browser(client).post(
        f"/poll/{pid}/vote", data={"choice": choice}, allow_redirects=False
    )
    assert response.status == 302
    assert votes_counted(stoppable_database.url) == 1  # the 503 vote was never counted
    assert vote_rows_match_counters(stoppable_database.url)


@pytest.mark.slow  # a storm for about ten seconds, a frozen link in the middle
async def test_votes_across_a_frozen_database_link_are_never_counted_after_a_failure_answer(
    aiohttp_client, config, database_url, make_question, sync_engine, vote_rows_match_counters
):
    """A partition is not a refusal: across a relay that stops passing anything, each vote is
    302 (counted), 503 (not counted) or 202 (may have counted), and the database agrees."""
    relay = await Relay(database_url).start()
    try:
        config["database"]["url"] = relay.url
        client = await aiohttp_client(init_app(config=config))  # database.timeout: 5 s
        question = make_question(choices=("Yes", "No"))
        path, choice = f"/poll/{question['id']}/vote", str(question["choices"][0])
        answers: dict[str, int] = {}  # voter id -> status
        stop = asyncio.Event()

        async def voter_loop() -> None:
            for _ in range(200):  # bounded: about 10 s of votes at most
                if stop.is_set():
                    return
                voter = secrets.token_urlsafe(18)
                async with asyncio.timeout(15):  # a vote left unanswered fails the test
                    response = await client.post(
                        path,
                        data={"choice": choice},
                        cookies={VOTER_COOKIE: voter},
                        allow_redirects=False,
                    )
                    await response.read()
                answers[voter] = response.status
                await asyncio.sleep(0.02)

        storm = [asyncio.ensure_future(voter_loop()) for _ in range(8)]
        await asyncio.sleep(1)
        relay.freeze()
        await asyncio.sleep(7)  # past the 5 s deadline of everything sent at the cut
        relay.thaw()
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*storm)
    finally:
        await relay.close()

    print("answers by status:", dict(collections.Counter(answers.values())))
    statuses = set(answers.values())
    assert statuses <= {302, 202, 503}, statuses
    assert {302, 503} <= statuses, statuses  # counted before and after; refused while cut
    counted = stored.voters(sync_engine, question["id"])
    told_counted = {v for v, status in answers.items() if status == 302}
    told_not = {v for v, status in answers.items() if status == 503}
    assert told_counted <= counted  # every 302 is in the database
    assert not told_not & counted  # no 503 was counted, then or later
    assert counted <= set(answers)
    assert vote_rows_match_counters()


async def test_page_whose_connection_is_ended_mid_query_is_read_again_and_served(
    client, make_question, end_blocked_backend, caplog
):
    """A reader never sees a lost connection: the read runs once more on another one."""
    caplog.set_level(logging.INFO, logger="aiohttpdemo_polls.web.errors")
    question = make_question(choices=("Yes", "No"))
    reading = await end_blocked_backend(
        "LOCK TABLE question IN ACCESS EXCLUSIVE MODE",  # the read waits
        lambda: client.get(f"/poll/{question['id']}"),
    )
    response = await asyncio.wait_for(reading, 10)
    assert response.status == 200
    assert "read again after a lost connection" in caplog.text


async def test_poll_whose_connection_is_ended_mid_transaction_is_made_once_on_another(
    client, sync_engine, end_blocked_backend
):
    """Making a poll is tried once more when its connection was lost; the poll exists once."""
    form = [("question_text", "Lost and found?"), ("choice", "Yes"), ("choice", "No")]
    # Creation first counts the maker's address in poll_creation: hold that table.
    making = await end_blocked_backend(
        "LOCK TABLE poll_creation IN ACCESS EXCLUSIVE MODE",
        lambda: client.post("/poll/new", data=form, allow_redirects=False),
    )
    response = await asyncio.wait_for(making, 10)
    assert response.status == 303
    with sync_engine.connect() as conn:
        made = conn.execute(sa.text("SELECT count(*) FROM question WHERE question_text = 'Lost and found?'"))
        assert made.scalar() == 1


async def test_a_poll_stored_under_a_token_is_found_by_it(client, make_question):
    """What tells a creation retried after a lost answer that the first try had committed."""
    question = make_question(token_hash=b"\x01" * 32)
    async with connections.connection(client.app[engine_key]) as conn:
        assert await making.poll_made_with(conn, b"\x01" * 32) == question["id"]
        assert await making.poll_made_with(conn, b"\x02" * 32) is None
