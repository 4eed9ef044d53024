"""Nothing the app runs in the background dies for good: the vote writer, the live fan-out,
the listener and the bus of changes each take an unexpected exception, once, and go on.

Each test injects a fault of ours (a RuntimeError where none is expected), then proves the
next vote is answered and counted and the next update reaches a watcher; no task is left
with an exception nobody retrieved.
"""

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from live_frames import frame

from aiohttpdemo_polls.store import changes, connections, polls, votes
from aiohttpdemo_polls.web.database import changes_key
from aiohttpdemo_polls.web.voting import NOT_COUNTED, VOTE_UNKNOWN, VOTER_COOKIE

ANSWER_BOUND = 10.0  # seconds: far past a vote's own deadline (database.timeout, 5 s)


class Once:
    """Wraps `real`: the first call raises RuntimeError, every later one is the real thing."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected fault")
        return self.real(*args, **kwargs)


async def next_total(ws: aiohttp.ClientWebSocketResponse, total: int) -> dict[str, Any]:
    """The first frame that shows `total` votes (an update may be sent twice after a fault)."""
    while (update := await frame(ws))["total"] != total:
        assert update["total"] < total, update
    return update


@pytest.fixture
def no_lost_task_errors(caplog):
    """Fails the test if asyncio logged an exception no one retrieved, or a callback's."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text


async def test_vote_writer_answers_its_batch_and_goes_on_after_an_unexpected_error(
    client, new_browser, make_question, vote, votes_of, monkeypatch, caplog, no_lost_task_errors
):
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 0
        monkeypatch.setattr(
            connections, "connection", Once(connections.connection)
        )  # before anything is sent
        async with asyncio.timeout(ANSWER_BOUND):  # a voter left waiting fails the test
            failed = await vote(new_browser(client), question["id"], yes)
        assert failed.status == 503
        assert NOT_COUNTED in await failed.text()
        assert "injected fault" in caplog.text  # logged with its traceback, not lost
        counted = await vote(new_browser(client), question["id"], yes)
        assert counted.status == 302
        assert (await next_total(ws, 1))["total"] == 1
    assert votes_of(question["id"])[yes] == 1  # the failed vote was not counted


async def test_vote_writer_says_a_vote_may_have_counted_when_it_failed_after_sending(
    client, make_question, vote, votes_of, monkeypatch, no_lost_task_errors
):
    """Once the statement may have gone out, only 'may have counted' (202) is the truth; the
    cookie it sets makes voting again count once, whatever happened."""
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    monkeypatch.setattr(votes, "_execute", Once(votes._execute))
    async with asyncio.timeout(ANSWER_BOUND):
        unknown = await vote(client, question["id"], yes)
    assert unknown.status == 202
    assert VOTE_UNKNOWN in await unknown.text()
    assert VOTER_COOKIE in unknown.cookies
    again = await vote(client, question["id"], yes)
    assert again.status == 302
    assert votes_of(question["id"])[yes] == 1


async def test_vote_writer_answers_the_api_with_a_problem_document_after_an_unexpected_error(
    client, make_question, monkeypatch, no_lost_task_errors
):
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    monkeypatch.setattr(connections, "connection", Once(connections.connection))
    async with asyncio.timeout(ANSWER_BOUND):
        failed = await client.post(f"/api/polls/{question['id']}/vote", json={"choices": [yes]})
    assert failed.status == 503
    assert failed.content_type == "application/problem+json"
    assert (await failed.json())["detail"] == NOT_COUNTED
    counted = await client.post(f"/api/polls/{question['id']}/vote", json={"choices": [yes]})
    assert counted.status == 200


async def test_live_fan_out_goes_on_after_an_unexpected_error(
    client, new_browser, make_question, vote, monkeypatch, caplog, no_lost_task_errors
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 0
        monkeypatch.setattr(polls, "live_counts", Once(polls.live_counts))
        assert (await vote(new_browser(client), question["id"], yes)).status == 302
        # The round that failed is sent again: the update still arrives.
        assert (await next_total(ws, 1))["total"] == 1
        assert "injected fault" in caplog.text
        assert (await vote(new_browser(client), question["id"], no)).status == 302
        assert (await next_total(ws, 2))["total"] == 2
    async with client.ws_connect(f"/poll/{question['id']}/live") as late:
        assert (await frame(late))["total"] == 2  # and a new watcher gets its snapshot


async def test_listener_goes_on_after_an_unexpected_error(
    client, sync_engine, make_question, monkeypatch, caplog, eventually, no_lost_task_errors
):
    question = make_question(choices=("Yes", "No"))
    yes, _ = question["choices"]
    bus = client.app[changes_key]
    async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
        assert (await frame(ws))["total"] == 0
        monkeypatch.setattr(changes, "_poll_ids", Once(changes._poll_ids))
        # Changes made outside the app: only the listener can bring them.
        for total in (1, 2):
            with sync_engine.begin() as conn:
                conn.execute(sa.text("UPDATE choice SET votes = votes + 1 WHERE id = :id"), {"id": yes})
            assert (await next_total(ws, total))["total"] == total
        assert "injected fault" in caplog.text

        async def listening() -> bool:
            return bus.listening

        await eventually(listening)


def test_a_failing_subscriber_keeps_no_news_from_the_others(caplog):
    bus = changes.Changes("postgresql:///unused")  # never started: only its fan-out is used
    broken = Once(lambda question_id: None)
    heard: list[int | None] = []
    bus.subscribe(broken)
    bus.subscribe(heard.append)
    bus.changed([1, 2])
    bus.changed(None)
    assert heard == [1, 2, None]
    assert broken.calls == 3  # it failed on the first, and still heard the others
    assert "injected fault" in caplog.text
