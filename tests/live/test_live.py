"""Live results over WebSocket: snapshots, updates within a blink, across processes, and faults."""

import asyncio
import json
import logging
import re
import select
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import yaml
from live_frames import counts, frame
from prometheus_client.parser import text_string_to_metric_families

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.live import hub as live_hub
from aiohttpdemo_polls.live.hub import live_key
from aiohttpdemo_polls.maker import form as poll_form
from aiohttpdemo_polls.web.database import changes_key

TEST_CONFIG = settings.PROJECT_ROOT / "config" / "polls_test.yaml"


async def test_snapshot_on_connect_has_counts_percentages_and_state(client, anonymous, make_question, vote):
    question = make_question(choices=("Yes", "No", "Maybe"))
    yes, no, maybe = question["choices"]
    for choice in (yes, yes, no):
        assert (await vote(anonymous, question["id"], choice)).status == 302
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert await frame(ws) == {
            "question_id": question["id"],
            "total": 3,
            "closed": False,
            "choices": [
                {"id": yes, "votes": 2, "percent": 66.7},
                {"id": no, "votes": 1, "percent": 33.3},
                {"id": maybe, "votes": 0, "percent": 0.0},
            ],
        }


async def test_vote_reaches_watcher_within_a_second(client, anonymous, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 0
        started = time.monotonic()
        assert (await vote(anonymous, question["id"], no)).status == 302
        update = await frame(ws, timeout=1.0)
        assert time.monotonic() - started < 1.0
    assert update["total"] == 1
    assert counts(update) == {yes: 0, no: 1}
    assert [c["percent"] for c in update["choices"]] == [0.0, 100.0]


async def test_burst_of_votes_is_coalesced_and_ends_exact(client, anonymous, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        await frame(ws)
        answers = await asyncio.gather(*(vote(anonymous, question["id"], yes) for _ in range(30)))
        assert {answer.status for answer in answers} == {302}
        updates = [await frame(ws)]
        while updates[-1]["total"] < 30:
            updates.append(await frame(ws))
    # 30 commits, 100 ms window: far fewer than 30 broadcasts, and the last one is exact.
    assert len(updates) < 30
    assert counts(updates[-1])[yes] == 30


async def test_vote_through_one_process_reaches_watcher_of_another(app_process, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    processes = app_process(), app_process()
    for process in processes:
        process.wait_serving()
    first, second = (process.url for process in processes)
    async with (
        aiohttp.ClientSession(base_url=first, cookie_jar=aiohttp.DummyCookieJar()) as voter,
        aiohttp.ClientSession() as watcher,
        watcher.ws_connect(f"{second}/poll/{question['id']}/live") as ws,
    ):
        assert (await frame(ws, timeout=5))["total"] == 0
        assert (await vote(voter, question["id"], yes)).status == 302
        update = await frame(ws, timeout=1.0)
    assert counts(update) == {yes: 1, no: 0}


async def test_thousand_watchers_of_one_poll_all_receive_an_update(client, anonymous, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    url = client.make_url(f"/poll/{question['id']}/live")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for _ in range(10):
                batch = await asyncio.gather(*(session.ws_connect(url) for _ in range(100)))
                sockets.extend(batch)
                assert {(await frame(ws, timeout=10))["total"] for ws in batch} == {0}
            assert client.app[live_key].count == 1000  # the app's watchers: all of them this poll's
            assert (await vote(anonymous, question["id"], yes)).status == 302
            updates = await asyncio.gather(*(frame(ws, timeout=10) for ws in sockets))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    assert all(counts(update)[yes] == 1 for update in updates)
    assert len(updates) == 1000


async def test_close_reopen_and_delete_from_the_manage_page_reach_watchers(client, make_poll):
    poll = await make_poll(choices=("Pizza", "Sushi"))
    async with client.ws_connect(f"/poll/{poll['id']}/live") as ws:
        assert (await frame(ws))["closed"] is False
        await client.post(poll["manage"], data={"action": "close"})
        assert (await frame(ws))["closed"] is True
        await client.post(poll["manage"], data={"action": "reopen"})
        assert (await frame(ws))["closed"] is False
        await client.post(poll["manage"], data={"action": "delete", "confirm": "yes"})
        assert await frame(ws) == {"question_id": poll["id"], "deleted": True}
        closing = await ws.receive(timeout=1)
        assert closing.type is aiohttp.WSMsgType.CLOSE
    assert client.app[live_key].count == 0


async def test_poll_unpublished_by_sql_is_sent_as_deleted(client, sync_engine, make_question):
    question = make_question()
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        await frame(ws)
        with sync_engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE question SET pub_date = now() + interval '1 day' WHERE id = :id"),
                {"id": question["id"]},
            )
        assert await frame(ws) == {"question_id": question["id"], "deleted": True}


async def test_poll_reaching_closes_at_is_sent_as_closed(client, make_question):
    question = make_question(closes_at=sa.func.now() + sa.text("interval '300 milliseconds'"))
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["closed"] is False
        assert (await frame(ws, timeout=2))["closed"] is True


async def test_changes_while_the_listener_is_down_arrive_after_it_reconnects(
    client, anonymous, unnoticed, make_question, vote
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    bus = client.app[changes_key]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 0
        listener = bus.backend_pid
        with unnoticed() as conn:
            # A change whose notice is lost, committed as the listener goes: only the
            # resync after reconnecting can bring it.
            conn.execute(sa.text("UPDATE choice SET votes = votes + 1 WHERE id = :id"), {"id": no})
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": listener}).scalar()
        resync = await frame(ws, timeout=5)
        assert counts(resync) == {yes: 0, no: 1}
        assert bus.listening and bus.backend_pid != listener
        assert (await vote(anonymous, question["id"], yes)).status == 302
        assert counts(await frame(ws)) == {yes: 1, no: 1}


@pytest.mark.parametrize("path", ["/poll/999/live", "/poll/99999999999/live", "/poll/abc/live"])
async def test_unknown_or_malformed_poll_is_404_before_upgrade(client, make_question, path):
    make_question()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(path)
    assert refused.value.status == 404


async def test_unpublished_poll_is_404_page_before_upgrade(client, make_question):
    question = make_question(days=3)
    response = await client.get(
        f"/poll/{question['id']}/live",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 404
    assert "There is no such page." in await response.text()


async def test_plain_get_on_live_explains_itself(client, make_question):
    question = make_question()
    response = await client.get(f"/poll/{question['id']}/live")
    assert response.status == 400
    assert "live results" in await response.text()


async def test_watchers_past_the_limit_get_503(aiohttp_client, config, make_question):
    config["live"]["max_watchers"] = 2
    client = await aiohttp_client(init_app(config=config))
    question = make_question()
    url = f"/poll/{question['id']}/live"
    async with client.ws_connect(url) as first, client.ws_connect(url) as second:
        await frame(first)
        await frame(second)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(url)
        assert refused.value.status == 503
    # Slots are given back when watchers leave.
    async with client.ws_connect(url) as third:
        assert (await frame(third))["question_id"] == question["id"]


async def test_binary_frame_closes_the_socket(client, make_question):
    question = make_question()
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        await frame(ws)
        await ws.send_str("hello")  # text is ignored
        await ws.send_bytes(b"\x00\x01")
        closing = await ws.receive(timeout=1)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.UNSUPPORTED_DATA


async def test_oversized_message_closes_the_socket(client, make_question):
    question = make_question()
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        await frame(ws)
        await ws.send_str("x" * 100_000)
        closing = await ws.receive(timeout=1)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_shutdown_closes_watchers_with_going_away(client, make_question):
    question = make_question()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(client.make_url(f"/poll/{question['id']}/live"))
        await frame(ws)
        await client.server.close()
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
        await ws.close()


async def test_subscribers_hear_each_poll_a_statement_changed_once(
    eventually, client, sync_engine, make_question, settled
):
    first, second, third = make_question(), make_question(), make_question()
    await settled()
    heard: list[int | None] = []
    client.app[changes_key].subscribe(heard.append)
    with sync_engine.begin() as conn:  # six rows of two polls, in one statement
        conn.execute(
            sa.text("UPDATE choice SET votes = votes + 1 WHERE question_id IN (:a, :b)"),
            {"a": first["id"], "b": second["id"]},
        )
    with sync_engine.begin() as conn:  # notices arrive in commit order: this one comes last
        conn.execute(sa.text("UPDATE question SET multiple = true WHERE id = :id"), {"id": third["id"]})

    async def third_heard() -> bool:
        return third["id"] in heard

    await eventually(third_heard)
    assert sorted(heard[:2]) == [first["id"], second["id"]]
    assert heard[2:] == [third["id"]]


async def test_own_vote_reaches_subscribers_before_its_redirect(
    client, anonymous, make_question, settled, vote
):
    question = make_question()
    await settled()
    heard: list[int | None] = []
    client.app[changes_key].subscribe(heard.append)
    assert (await vote(anonymous, question["id"], question["choices"][0])).status == 302
    # Told at its commit, not when the notice comes back: the next page is already fresh.
    assert heard and set(heard) == {question["id"]}


async def test_results_page_loads_live_script_and_names_its_socket(client, make_question):
    question = make_question()
    page = await (await client.get(f"/poll/{question['id']}/results")).text()
    assert f'data-live="/poll/{question["id"]}/live"' in page
    assert 'data-closed="false"' in page
    assert '<script src="/static/live.js" defer></script>' in page
    assert "<script>" not in page and "style=" not in page


async def test_live_script_is_served_as_javascript(client):
    response = await client.get("/static/live.js")
    assert response.status == 200
    assert response.content_type in {"application/javascript", "text/javascript"}
    assert "new WebSocket(" in await response.text()


async def test_watcher_that_does_not_read_is_dropped_and_others_keep_up(
    aiohttp_client, config, sync_engine, make_question
):
    config["live"]["window_ms"] = 0  # every notice is an update: fill a stalled socket fast
    client = await aiohttp_client(init_app(config=config))
    hub = client.app[live_key]
    # Many choices make big frames, so the kernel's socket buffers fill after a few hundred.
    question = make_question(choices=tuple(f"Choice {n}" for n in range(300)))
    path = f"/poll/{question['id']}/live"
    stalled = await open_stalled(client.host, client.port, path, rcvbuf=4096)  # a tiny window
    async with client.ws_connect(path) as fast:
        received = [await frame(fast)]
        reader = asyncio.create_task(_read_all(fast, received))
        try:
            deadline = time.monotonic() + 20
            while hub.count > 1:
                assert time.monotonic() < deadline, "the stalled watcher was never dropped"
                with sync_engine.begin() as conn:  # a new count each time: a new frame
                    conn.execute(
                        sa.text("UPDATE choice SET votes = votes + 1 WHERE id = :id"),
                        {"id": question["choices"][1]},
                    )
                await asyncio.sleep(0.001)  # let the app take the notice
            sent = len(received)
            with sync_engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE choice SET votes = CASE id WHEN :id THEN 7 ELSE 0 END WHERE question_id = :q"
                    ),
                    {"id": question["choices"][0], "q": question["id"]},
                )
            deadline = time.monotonic() + 5
            # Choice 0 at 7 only after this: the increments went to choice 1.
            while counts(received[-1])[question["choices"][0]] != 7:
                assert time.monotonic() < deadline, "the reading watcher stopped getting updates"
                await asyncio.sleep(0.01)
        finally:
            reader.cancel()
            stalled.close()
    assert len(received) > sent


async def _read_all(ws: aiohttp.ClientWebSocketResponse, into: list) -> None:
    async for message in ws:
        into.append(json.loads(message.data))


async def open_stalled(host: str, port: int, path: str, rcvbuf: int | None = None) -> socket.socket:
    """A live-results socket that asks for the upgrade and then never reads a byte: a page
    frozen in a sleeping phone. Default kernel buffers unless `rcvbuf` is given."""
    stalled = socket.socket()
    if rcvbuf is not None:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    stalled.setblocking(False)
    await asyncio.get_running_loop().sock_connect(stalled, (host, port))
    stalled.send(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return stalled


def was_reset(sock: socket.socket) -> bool:
    """The server reset the connection (an error and a hang-up are pending), seen without reading:
    a socket closed gracefully would still be delivering what waited for it."""
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def config_file(folder: Path, **live: Any) -> Path:
    """The test settings with some `live` settings changed, as a file for `app_process`."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["live"].update(live)
    path = folder / "polls.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def dropped_total(metrics_port: int, reason: str) -> float:
    """polls_live_watchers_dropped_total{reason} as the metrics port serves it."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response,
    ):
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "polls_live_watchers_dropped_total" and sample.labels["reason"] == reason
    )


async def test_watcher_that_stops_reading_is_dropped_within_one_and_a_half_heartbeats_and_counted(
    app_process, tmp_path, sync_engine, make_question, eventually, unused_tcp_port_factory
):
    heartbeat = 1.0  # the least live.heartbeat_s allows
    # docs/live-results.md: the next ping within a heartbeat, its pong within half of one, each
    # looked at once every SWEEP_S.
    bound = 1.5 * heartbeat + 2 * live_hub.SWEEP_S
    metrics_port = unused_tcp_port_factory()
    app = app_process(
        config=config_file(tmp_path, heartbeat_s=heartbeat), env={"POLLS_METRICS_PORT": str(metrics_port)}
    )
    app.wait_serving()
    question = make_question(choices=("Yes", "No"))
    path = f"/poll/{question['id']}/live"
    async with aiohttp.ClientSession() as session, session.ws_connect(app.url + path) as reading:
        received = [await frame(reading, timeout=10)]
        reader = asyncio.create_task(_read_all(reading, received))
        started = time.monotonic()
        stalled = await open_stalled("127.0.0.1", int(app.url.rsplit(":", 1)[1]), path)
        try:
            votes = 0
            while not was_reset(stalled):
                assert time.monotonic() - started < 30, f"the stalled watcher was never dropped\n{app.log()}"
                votes += 1
                with sync_engine.begin() as conn:  # updates keep coming, as in a live poll
                    conn.execute(
                        sa.text("UPDATE choice SET votes = votes + 1 WHERE id = :id"),
                        {"id": question["choices"][0]},
                    )
                await asyncio.sleep(0.05)
            dropped_after = time.monotonic() - started

            async def reader_has_the_last() -> bool:
                return received[-1]["total"] == votes

            await eventually(reader_has_the_last)
            # The reader answered every ping meanwhile: it is still there, getting updates.
            assert not reading.closed
        finally:
            reader.cancel()
            stalled.close()

        async def counted() -> bool:  # a process writes its counts once a second
            return await dropped_total(metrics_port, "no_pong") == 1

        await eventually(counted)
    assert dropped_after <= bound, f"dropped {dropped_after:.2f} s after it stopped reading"
    assert await dropped_total(metrics_port, "backlog") == 0
    assert re.search(r"dropped a slow watcher of poll \d+ \(no pong", app.log())


async def test_watcher_that_never_reads_is_dropped_once_its_backlog_passes_the_bound(
    aiohttp_client, config, sync_engine, make_question, caplog, eventually
):
    config["live"]["window_ms"] = 0  # every notice is an update: fill the stalled socket fast
    config["live"]["heartbeat_s"] = 600  # no ping is due in this test: bytes alone drop it
    client = await aiohttp_client(init_app(config=config))
    hub = client.app[live_key]
    # As many choices as a poll may have: the biggest frames a real poll sends.
    question = make_question(choices=tuple(f"Choice {n}" for n in range(poll_form.MAX_CHOICES)))
    first, second = question["choices"][:2]
    path = f"/poll/{question['id']}/live"
    caplog.set_level(logging.INFO, logger="aiohttpdemo_polls.live.hub")
    async with client.ws_connect(path) as reading:
        received = [await frame(reading)]
        reader = asyncio.create_task(_read_all(reading, received))
        stalled = await open_stalled(client.host, client.port, path)  # default buffers

        async def both_watching() -> bool:
            return hub.count == 2  # the app's only watchers: both of this poll

        await eventually(both_watching)
        try:
            deadline = time.monotonic() + 60
            while hub.count > 1:
                assert time.monotonic() < deadline, "never dropped"
                with sync_engine.begin() as conn:
                    conn.execute(
                        sa.text("UPDATE choice SET votes = votes + 1 WHERE id = :id"), {"id": second}
                    )
                await asyncio.sleep(0.001)  # let the app hear of the change
            assert was_reset(stalled)  # what waited for it is gone from the kernel too
            with sync_engine.begin() as conn:
                conn.execute(sa.text("UPDATE choice SET votes = 1000000 WHERE id = :id"), {"id": first})

            async def reader_has_the_last() -> bool:
                return counts(received[-1])[first] == 1_000_000

            await eventually(reader_has_the_last)
        finally:
            reader.cancel()
            stalled.close()
    # The bytes waiting when it was dropped, as the app logs them. Checked before each frame,
    # they grow by at most one frame (and a ping, 2 bytes) past the bound before the check drops it.
    waiting = [
        int(found[1])
        for r in caplog.records
        if (found := re.search(r"dropped a slow watcher of poll \d+ \((\d+) bytes waiting", r.getMessage()))
    ]
    assert len(waiting) == 1, waiting
    biggest = max(len(json.dumps(message)) for message in received) + 4  # a frame's header
    assert live_hub.MAX_BACKLOG < waiting[0] <= live_hub.MAX_BACKLOG + biggest + 2, waiting
