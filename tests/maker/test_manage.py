"""The maker's private manage page: the token, and close, reopen, delete and edit."""

import asyncio
import hashlib
import html
import re

import aiopg
import aiopg.sa
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.maker import manage
from aiohttpdemo_polls.store import making, schema
from aiohttpdemo_polls.store.changes import Changes
from aiohttpdemo_polls.web.voting import VOTING_CLOSED


@pytest.fixture
async def notices(database_url):
    """The `poll_changes` notices PostgreSQL delivers, as live results would hear them."""
    async with aiopg.connect(database_url) as conn:
        async with conn.cursor() as cur:
            await cur.execute(f"LISTEN {schema.CHANNEL}")
        yield conn.notifies


async def next_notice(notices) -> str:
    # Generous: a notice comes in milliseconds, but the machine may be busy.
    return (await asyncio.wait_for(notices.get(), timeout=10)).payload


async def test_token_is_long_random_and_only_its_hash_is_stored(make_poll, sync_engine, stored_poll):
    first, second = await make_poll(), await make_poll("Another?")
    for poll in (first, second):
        assert len(poll["token"]) >= 43  # 32 random bytes (256 bits) in URL-safe base64
        assert re.fullmatch(r"[A-Za-z0-9_-]+", poll["token"])
        assert stored_poll(poll["id"]).question.token_hash == hashlib.sha256(poll["token"].encode()).digest()
    assert first["token"] != second["token"]
    with sync_engine.connect() as conn:
        dump = " ".join(conn.execute(sa.text("SELECT q::text FROM question q")).scalars())
        dump += " ".join(conn.execute(sa.text("SELECT c::text FROM choice c")).scalars())
    assert first["token"] not in dump and second["token"] not in dump


async def test_manage_page_says_live_and_shows_both_links_with_copy_buttons(client, make_poll):
    poll = await make_poll()
    response = await client.get(poll["manage"])
    assert response.status == 200
    page = await response.text()
    origin = str(client.make_url("/")).rstrip("/")
    assert "Your poll is live" in page
    assert f'id="public-link" value="{origin}/poll/{poll["id"]}" readonly' in page
    assert f'id="private-link" value="{origin}{poll["manage"]}" readonly' in page
    assert 'data-copy="public-link" hidden>Copy</button>' in page
    assert 'data-copy="private-link" hidden>Copy</button>' in page
    assert '<script src="/static/copy.js" defer></script>' in page
    assert "Keep the private link." in page
    assert '<ul class="results" data-question=' in page and "Pizza" in page


EXPORTS = ("results.csv", "results.json", "ballots.csv")


async def test_the_makers_addresses_never_show_in_a_referer_or_a_cache(client, make_poll):
    # The token in the address is the poll's only lock: no Referer or shared cache may hold
    # it, whatever the answer (pages, files, redirects, refusals; a wrong token alike).
    poll = await make_poll()
    manage = poll["manage"]
    answers = {
        "manage page": await client.get(manage),
        "confirm delete": await client.post(manage, data={"action": "delete"}),
        "edit refused (400)": await client.post(manage, data=[("action", "edit"), ("question_text", "")]),
        "unknown action (400)": await client.post(manage, data={"action": "dance"}),
        "wrong token (404)": await client.get(f"/poll/{poll['id']}/manage/{'A' * 43}"),
        **{name: await client.get(f"{manage}/{name}") for name in EXPORTS},
        "close (303)": await client.post(manage, data={"action": "close"}, allow_redirects=False),
    }
    statuses = {name: response.status for name, response in answers.items()}
    assert statuses == {
        "manage page": 200,
        "confirm delete": 200,
        "edit refused (400)": 400,
        "unknown action (400)": 400,
        "wrong token (404)": 404,
        "results.csv": 200,
        "results.json": 200,
        "ballots.csv": 200,
        "close (303)": 303,
    }
    for name, response in answers.items():
        assert response.headers["Referrer-Policy"] == "strict-origin", name
        assert response.headers["Cache-Control"] == "private, no-store", name
    # The public pages keep the site's policy: a Referer to our own pages, and caches allowed.
    public = await client.get(f"/poll/{poll['id']}/results")
    assert public.headers["Referrer-Policy"] == "same-origin"
    assert "no-store" not in public.headers.get("Cache-Control", "")


async def test_links_are_https_when_the_config_says_so(aiohttp_client, config, sync_engine):
    client = await aiohttp_client(init_app(config={**config, "https": True}))
    response = await client.post(
        "/poll/new", data=[("question_text", "Q?"), ("choice", "A"), ("choice", "B")], allow_redirects=False
    )
    page = await (await client.get(response.headers["Location"])).text()
    assert f'value="https://{client.make_url("/").authority}/poll/' in page


@pytest.mark.parametrize(
    "wrong",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token[:-1],
        lambda token: token + "x",
        lambda token: "A" * 43,
        lambda token: "",
    ],
)
async def test_wrong_or_missing_token_is_a_plain_404(client, make_poll, stored_poll, wrong):
    poll = await make_poll()
    path = f"/poll/{poll['id']}/manage/{wrong(poll['token'])}"
    unknown = await (await client.get("/poll/99999/manage/" + poll["token"])).text()
    response = await client.get(path)
    assert response.status == 404
    assert await response.text() == unknown  # the same page: no hint that the poll exists
    posted = await client.post(path, data={"action": "close"})
    assert posted.status == 404
    assert stored_poll(poll["id"]).question.closed is False


async def test_another_polls_token_does_not_manage_this_one(client, make_poll, make_question):
    mine, theirs = await make_poll(), await make_poll("Theirs?")
    assert (await client.get(f"/poll/{theirs['id']}/manage/{mine['token']}")).status == 404
    # Polls from init_db.py or SQL have no token at all: nothing manages them on the web.
    seeded = make_question()
    assert (await client.get(f"/poll/{seeded['id']}/manage/{mine['token']}")).status == 404
    assert (
        await client.post(f"/poll/{seeded['id']}/manage/x", data={"action": "delete", "confirm": "yes"})
    ).status == 404


async def test_close_stops_voting_now_and_reopen_starts_it_again(
    client, anonymous, make_poll, stored_poll, notices, vote, votes_of
):
    poll = await make_poll()
    assert await next_notice(notices) == str(poll["id"])  # its creation
    response = await client.post(poll["manage"], data={"action": "close"}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == poll["manage"] + "?done=closed"
    assert await next_notice(notices) == str(poll["id"])
    row = stored_poll(poll["id"]).question
    assert row.closed and row.closed_at is not None
    page = await (await client.get(response.headers["Location"])).text()
    assert "Your poll is closed" in page and manage.NOTICES["closed"] in page
    assert 'value="reopen"' in page

    public = await (await anonymous.get(f"poll/{poll['id']}")).text()
    assert 'name="choice"' not in public and "Voting closed " in public  # results, not the form
    chosen = min(votes_of(poll["id"]))
    refused = await vote(anonymous, poll["id"], chosen)
    assert refused.status == 409
    assert VOTING_CLOSED in await refused.text()
    assert set(votes_of(poll["id"]).values()) == {0}

    response = await client.post(poll["manage"], data={"action": "reopen"}, allow_redirects=False)
    assert response.headers["Location"] == poll["manage"] + "?done=reopened"
    assert await next_notice(notices) == str(poll["id"])
    assert stored_poll(poll["id"]).question.closed is False
    assert (await vote(anonymous, poll["id"], chosen)).status == 302
    assert votes_of(poll["id"])[chosen] == 1


async def test_reopen_after_closes_at_passed_clears_it(client, make_poll, sync_engine, stored_poll):
    poll = await make_poll()
    with sync_engine.begin() as conn:
        conn.execute(schema.question.update().values(closes_at=sa.func.now() - sa.text("interval '1 hour'")))
    assert stored_poll(poll["id"]).question.closed is True
    await client.post(poll["manage"], data={"action": "reopen"})
    row = stored_poll(poll["id"]).question
    assert row.closed is False and row.closes_at is None


async def test_delete_asks_for_confirmation_first(client, make_poll, stored_poll):
    poll = await make_poll()
    response = await client.post(poll["manage"], data={"action": "delete"})
    assert response.status == 200
    page = await response.text()
    assert "Delete this poll?" in page
    assert '<input type="hidden" name="confirm" value="yes">' in page
    assert f'<form method="post" action="{poll["manage"]}"' in page
    assert f'href="{poll["manage"]}">No, keep it</a>' in page
    assert stored_poll(poll["id"]).question is not None


async def test_confirmed_delete_removes_poll_choices_and_votes(
    client, anonymous, make_poll, sync_engine, stored_poll, notices, vote, votes_of
):
    poll = await make_poll()
    assert await next_notice(notices) == str(poll["id"])  # its creation
    assert (await vote(anonymous, poll["id"], min(votes_of(poll["id"])))).status == 302
    assert await next_notice(notices) == str(poll["id"])
    response = await client.post(
        poll["manage"], data={"action": "delete", "confirm": "yes"}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/poll/deleted"
    assert await next_notice(notices) == str(poll["id"])
    assert stored_poll(poll["id"]).question is None
    with sync_engine.connect() as conn:
        for table in (schema.choice, schema.ballot, schema.vote):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    assert "The poll was deleted" in await (await client.get("/poll/deleted")).text()
    assert (await client.get(poll["manage"])).status == 404
    assert (await client.get(f"/poll/{poll['id']}")).status == 404


async def test_edit_before_any_vote_changes_the_texts(client, make_poll, stored_poll, notices):
    poll = await make_poll("Wher to eat?", ("Piza", "Sushi", "Salad"))
    assert await next_notice(notices) == str(poll["id"])  # its creation
    data = [
        ("action", "edit"),
        ("question_text", " Where to eat? "),
        ("choice", "Pizza"),
        ("choice", "Sushi"),
        ("choice", "Salads"),
    ]
    response = await client.post(poll["manage"], data=data, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == poll["manage"] + "?done=edited"
    assert await next_notice(notices) == str(poll["id"])
    assert stored_poll(poll["id"]).question.question_text == "Where to eat?"
    assert stored_poll(poll["id"]).choices == ["Pizza", "Sushi", "Salads"]


async def test_edit_with_bad_texts_shows_messages_and_changes_nothing(client, make_poll, stored_poll):
    poll = await make_poll("Lunch?", ("Pizza", "Sushi"))
    data = [("action", "edit"), ("question_text", "Lunch today?"), ("choice", "Pizza"), ("choice", " ")]
    response = await client.post(poll["manage"], data=data)
    assert response.status == 400
    page = await response.text()
    assert '<p class="field-error" id="choice-1-error">Write a text for this choice.</p>' in page
    assert 'name="question_text" value="Lunch today?"' in page
    assert stored_poll(poll["id"]).question.question_text == "Lunch?"
    assert stored_poll(poll["id"]).choices == ["Pizza", "Sushi"]


async def test_edit_is_refused_once_someone_voted(client, anonymous, make_poll, stored_poll, vote, votes_of):
    poll = await make_poll("Lunch?", ("Pizza", "Sushi"))
    page = await (await client.get(poll["manage"])).text()
    assert 'value="edit"' in page
    assert (await vote(anonymous, poll["id"], min(votes_of(poll["id"])))).status == 302
    page = await (await client.get(poll["manage"])).text()
    assert 'value="edit"' not in page
    assert "can no longer be changed" in page
    data = [("action", "edit"), ("question_text", "Dinner?"), ("choice", "Soup"), ("choice", "Bread")]
    response = await client.post(poll["manage"], data=data)
    assert response.status == 409
    assert html.escape(manage.HAS_VOTES) in await response.text()
    assert stored_poll(poll["id"]).question.question_text == "Lunch?"
    assert stored_poll(poll["id"]).choices == ["Pizza", "Sushi"]


@pytest.mark.parametrize("data", [{}, {"action": "explode"}, {"action": ""}])
async def test_unknown_action_is_a_400_page(client, make_poll, stored_poll, data):
    poll = await make_poll()
    response = await client.post(poll["manage"], data=data)
    assert response.status == 400
    assert manage.UNKNOWN_ACTION in html.unescape(await response.text())
    assert stored_poll(poll["id"]).question.closed is False


async def test_the_makers_writes_tell_the_bus_of_changes_once_committed_and_only_when_they_change(
    database_url, make_question, add_votes
):
    bus = Changes(database_url)  # never started: only the store's own commits can reach it
    heard: list[int | None] = []
    bus.subscribe(heard.append)
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=1) as engine, engine.acquire() as conn:
        made = await making.create_poll(conn, bus, "Told?", ["Yes", "No"], False, None, b"\x03" * 32, "t", 5)
        assert heard == [made]
        heard.clear()
        assert await making.close_poll(conn, bus, made)
        assert not await making.close_poll(conn, bus, made)  # closed already: nothing changed
        assert await making.reopen_poll(conn, bus, made)
        assert not await making.reopen_poll(conn, bus, made)
        assert await making.edit_poll(conn, bus, made, "Told again?", ["Y", "N"]) is making.EditOutcome.EDITED
        assert heard == [made, made, made]
        heard.clear()
        voted = make_question(choices=("A", "B"))
        add_votes(voted["id"], {voted["choices"][0]: 1})
        assert (
            await making.edit_poll(conn, bus, voted["id"], "New?", ["C", "D"]) is making.EditOutcome.HAS_VOTES
        )
        assert heard == []
        assert await making.delete_poll(conn, bus, made)
        assert not await making.delete_poll(conn, bus, made)  # gone already
        assert heard == [made]
