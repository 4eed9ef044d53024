"""Who may make polls (`creation`: open, key, closed) and the per-client hourly limit."""

import asyncio
import json

import pytest
import sqlalchemy as sa
import stored
from markupsafe import escape

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.maker import creation
from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.web import clients

FORM = [("question_text", "Who comes?"), ("choice", "Me"), ("choice", "Not me")]
API_BODY = {"question_text": "Who comes?", "choices": ["Me", "Not me"]}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def app_with(aiohttp_client, config, sync_engine):
    """`await app_with(creation="key", ...)`: a client on the app with these settings changed."""

    async def start(**changes):
        return await aiohttp_client(init_app(config={**config, **changes}))

    return start


def test_settings_take_creation_from_the_file_or_the_environment(tmp_path):
    path = tmp_path / "polls.yaml"
    path.write_text("creation: closed\nlimits: {polls_per_hour: 5}\ntrusted_proxies: [10.0.0.0/8]\n")
    loaded = settings.load(path, {})
    assert (loaded["creation"], loaded["limits"], loaded["trusted_proxies"]) == (
        "closed",
        {"polls_per_hour": 5, "reports_per_hour": 10},
        ["10.0.0.0/8"],
    )
    env = {"POLLS_CREATION": "key", "POLLS_CREATION_KEY": "s3cret", "POLLS_TRUSTED_PROXIES": "127.0.0.1, ::1"}
    loaded = settings.load(path, env)
    assert (loaded["creation"], loaded["creation_key"], loaded["trusted_proxies"]) == (
        "key",
        "s3cret",
        ["127.0.0.1", "::1"],
    )
    defaults = settings.SCHEMA.check({})
    assert (defaults["creation"], defaults["limits"]["polls_per_hour"], defaults["trusted_proxies"]) == (
        "open",
        20,
        [],
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POLLS_CREATION": "key"}, "creation_key: must be set"),
        ({"POLLS_CREATION": "sometimes"}, "creation"),
        ({"POLLS_TRUSTED_PROXIES": "10.0.0.300"}, "trusted_proxies: '10.0.0.300' is not an IP address"),
    ],
)
def test_bad_creation_settings_are_config_errors_naming_the_key(tmp_path, env, message):
    path = tmp_path / "polls.yaml"
    path.write_text("host: 127.0.0.1\n")
    with pytest.raises(settings.ConfigError, match=message):
        settings.load(path, env)


async def test_key_mode_form_asks_for_the_key_and_refuses_a_wrong_one_with_403(app_with, sync_engine):
    client = await app_with(creation="key", creation_key="open sesame")
    page = await (await client.get("/poll/new")).text()
    assert 'type="password" id="creation_key" name="creation_key" value=""' in page
    for given, message in ((None, creation.KEY_REQUIRED), ("open sesam", creation.WRONG_KEY)):
        data = FORM if given is None else [*FORM, ("creation_key", given)]
        response = await client.post("/poll/new", data=data, allow_redirects=False)
        page = await response.text()
        assert response.status == 403
        assert f'<p class="field-error" id="creation_key-error">{escape(message)}</p>' in page
        assert 'value="Who comes?"' in page and "open sesam" not in page  # kept as typed, key not shown
    assert stored.rows(sync_engine, schema.question) == 0
    response = await client.post(
        "/poll/new", data=[*FORM, ("creation_key", "open sesame")], allow_redirects=False
    )
    assert response.status == 303 and "/manage/" in response.headers["Location"]
    assert stored.rows(sync_engine, schema.question) == 1


async def test_key_mode_api_takes_the_key_in_the_same_field(app_with, sync_engine):
    client = await app_with(creation="key", creation_key="open sesame")
    wrong = await client.post(
        "/api/polls", data=json.dumps({**API_BODY, "creation_key": "nope"}), headers=JSON
    )
    assert wrong.status == 403 and wrong.content_type == "application/problem+json"
    assert (await wrong.json())["errors"] == {"creation_key": creation.WRONG_KEY}
    right = await client.post(
        "/api/polls", data=json.dumps({**API_BODY, "creation_key": "open sesame"}), headers=JSON
    )
    assert right.status == 201
    assert stored.rows(sync_engine, schema.question) == 1


async def test_open_mode_shows_no_key_field(client):
    page = await (await client.get("/poll/new")).text()
    assert "creation_key" not in page


async def test_closed_mode_refuses_form_and_api_with_403(app_with, sync_engine, make_question):
    client = await app_with(creation="closed")
    for response in (
        await client.get("/poll/new"),
        await client.post("/poll/new", data=FORM),
    ):
        page = await response.text()
        assert response.status == 403 and response.content_type == "text/html"
        assert creation.CLOSED in page and "Back to all polls" in page
    api = await client.post("/api/polls", data=json.dumps(API_BODY), headers=JSON)
    assert api.status == 403 and (await api.json())["detail"] == creation.CLOSED
    assert stored.rows(sync_engine, schema.question) == 0
    made = make_question("Made with SQL?")  # the host's way in: still shown and open to votes
    assert (await client.get(f"/api/polls/{made['id']}")).status == 200


async def test_past_the_hourly_limit_the_form_gets_a_429_page_with_retry_after(app_with, sync_engine):
    client = await app_with(limits={"polls_per_hour": 3})
    for _ in range(3):
        assert (await client.post("/poll/new", data=FORM, allow_redirects=False)).status == 303
    response = await client.post("/poll/new", data=FORM, allow_redirects=False)
    page = await response.text()
    assert response.status == 429 and response.content_type == "text/html"
    assert creation.TOO_MANY in page
    assert 3590 <= int(response.headers["Retry-After"]) <= 3600
    api = await client.post("/api/polls", data=json.dumps(API_BODY), headers=JSON)
    assert api.status == 429 and api.content_type == "application/problem+json"
    assert (await api.json())["detail"] == creation.TOO_MANY
    assert 3590 <= int(api.headers["Retry-After"]) <= 3600
    assert stored.rows(sync_engine, schema.question) == stored.rows(sync_engine, schema.poll_creation) == 3


async def test_retry_after_counts_down_to_when_the_oldest_creation_leaves_the_hour(app_with, sync_engine):
    client = await app_with(limits={"polls_per_hour": 2})
    for _ in range(2):
        assert (await client.post("/poll/new", data=FORM, allow_redirects=False)).status == 303
    with sync_engine.begin() as conn:  # the first was made 45 minutes ago
        oldest = conn.execute(sa.select(sa.func.min(schema.poll_creation.c.id))).scalar_one()
        conn.execute(
            schema.poll_creation.update()
            .where(schema.poll_creation.c.id == oldest)
            .values(created_at=sa.func.now() - sa.text("interval '45 minutes'"))
        )
    response = await client.post("/poll/new", data=FORM, allow_redirects=False)
    assert response.status == 429
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    with sync_engine.begin() as conn:  # and once it is older than an hour, one more may be made
        conn.execute(
            schema.poll_creation.update()
            .where(schema.poll_creation.c.id == oldest)
            .values(created_at=sa.func.now() - sa.text("interval '61 minutes'"))
        )
    assert (await client.post("/poll/new", data=FORM, allow_redirects=False)).status == 303
    assert stored.rows(sync_engine, schema.question) == 3


async def test_racing_creations_never_pass_the_limit(app_with, sync_engine, new_browser):
    client = await app_with(limits={"polls_per_hour": 3})
    browsers = [new_browser(client) for _ in range(12)]

    async def make(browser):
        async with browser.post("/api/polls", data=json.dumps(API_BODY), headers=JSON) as response:
            return response.status

    statuses = await asyncio.gather(*(make(b) for b in browsers))
    assert sorted(statuses) == [201] * 3 + [429] * 9
    assert stored.rows(sync_engine, schema.question) == 3


def creators(sync_engine) -> list[str]:
    with sync_engine.connect() as conn:
        return (
            conn.execute(sa.select(schema.poll_creation.c.client).order_by(schema.poll_creation.c.id))
            .scalars()
            .all()
        )


async def test_forwarded_for_counts_only_from_a_trusted_proxy(app_with, sync_engine):
    untrusted = await app_with()
    headers = {"X-Forwarded-For": "203.0.113.9"}
    assert (
        await untrusted.post("/poll/new", data=FORM, headers=headers, allow_redirects=False)
    ).status == 303
    trusted = await app_with(trusted_proxies=["127.0.0.1"], limits={"polls_per_hour": 1})
    for address in ("203.0.113.5", "198.51.100.7, 203.0.113.6"):
        headers = {"X-Forwarded-For": address}
        assert (
            await trusted.post("/poll/new", data=FORM, headers=headers, allow_redirects=False)
        ).status == 303
    # Each visitor has a limit of its own behind the proxy: a second poll from the first is over it.
    again = await trusted.post("/poll/new", data=FORM, headers={"X-Forwarded-For": "203.0.113.5"})
    assert again.status == 429
    assert creators(sync_engine) == ["127.0.0.1", "203.0.113.5", "203.0.113.6"]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("198.51.100.1", ["203.0.113.1"], [], "198.51.100.1"),  # an untrusted peer's header is ignored
        ("198.51.100.1", ["203.0.113.1"], ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),  # a trusted peer with no header
        ("10.0.0.2", ["203.0.113.1"], ["10.0.0.0/8"], "203.0.113.1"),
        # A visitor's own X-Forwarded-For is on the left; the hop our proxy added is believed.
        ("10.0.0.2", ["6.6.6.6, 203.0.113.1"], ["10.0.0.0/8"], "203.0.113.1"),
        ("10.0.0.2", ["6.6.6.6, 203.0.113.1, 10.1.1.1"], ["10.0.0.0/8"], "203.0.113.1"),
        ("10.0.0.2", ["6.6.6.6", "203.0.113.1, 10.1.1.1"], ["10.0.0.0/8"], "203.0.113.1"),  # two headers
        ("10.0.0.2", ["10.3.3.3, 10.1.1.1"], ["10.0.0.0/8"], "10.3.3.3"),  # all trusted: the first
        ("10.0.0.2", ["6.6.6.6, garbage"], ["10.0.0.0/8"], "10.0.0.2"),  # not an address: stop there
        ("10.0.0.2", ["203.0.113.1:4000"], ["10.0.0.0/8"], "10.0.0.2"),
        ("::ffff:10.0.0.2", ["2001:db8::1"], ["10.0.0.0/8"], "2001:db8::1"),
        ("::1", [" 2001:db8::7 "], ["::1"], "2001:db8::7"),
        (None, ["203.0.113.1"], ["10.0.0.0/8"], clients.UNKNOWN),  # a Unix socket
    ],
)
def test_client_address_is_the_last_untrusted_hop(peer, forwarded, trusted, client):
    assert clients.client_address(peer, forwarded, trusted) == client
