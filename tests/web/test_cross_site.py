"""Cross-site requests: state-changing POSTs from another site's page are refused with a 403."""

import pytest
import sqlalchemy as sa
import stored

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.web.checks import CROSS_SITE
from aiohttpdemo_polls.web.voting import VOTER_COOKIE

FOREIGN = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "not a url"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling host of the same domain is another party
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "null"},  # a sandboxed frame, a cross-site redirect
    {"Sec-Fetch-Site": "same-site", "Origin": "null"},
]


def own_origin(client) -> str:
    return str(client.make_url("/").origin())


@pytest.mark.parametrize("headers", FOREIGN)
async def test_cross_site_vote_is_refused_and_counts_nothing(client, make_question, votes_of, vote, headers):
    question = make_question()
    response = await vote(client, question["id"], question["choices"][0], headers=headers)
    assert response.status == 403
    page = await response.text()
    assert "Forbidden" in page and CROSS_SITE in page and 'href="/"' in page
    assert VOTER_COOKIE not in response.cookies
    assert set(votes_of(question["id"]).values()) == {0}


@pytest.mark.parametrize("headers", FOREIGN)
async def test_cross_site_new_poll_is_refused(client, sync_engine, headers):
    data = [("question_text", "Q?"), ("choice", "A"), ("choice", "B")]
    response = await client.post("/poll/new", data=data, headers=headers, allow_redirects=False)
    assert response.status == 403
    assert stored.rows(sync_engine, schema.question) == 0


@pytest.mark.parametrize("action", ["close", "delete"])
@pytest.mark.parametrize("headers", FOREIGN)
async def test_cross_site_manage_action_is_refused(client, make_poll, sync_engine, headers, action):
    poll = await make_poll()
    data = {"action": action, "confirm": "yes"}
    response = await client.post(poll["manage"], data=data, headers=headers, allow_redirects=False)
    assert response.status == 403
    with sync_engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.closed.label("closed")).where(schema.question.c.id == poll["id"])
        ).first()
    assert row is not None and row.closed is False


async def test_same_origin_posts_are_accepted(client, make_question, votes_of, vote):
    headers = {"Origin": own_origin(client), "Sec-Fetch-Site": "same-origin"}
    question = make_question()
    counted = await vote(client, question["id"], question["choices"][0], headers=headers)
    assert counted.status == 302
    assert votes_of(question["id"])[question["choices"][0]] == 1
    data = [("question_text", "Q?"), ("choice", "A"), ("choice", "B")]
    created = await client.post("/poll/new", data=data, headers=headers, allow_redirects=False)
    assert created.status == 303
    closed = await client.post(
        created.headers["Location"], data={"action": "close"}, headers=headers, allow_redirects=False
    )
    assert closed.status == 303


async def test_forms_of_the_manage_pages_name_their_origin_and_are_accepted(client, make_poll):
    # Their Referer names the site alone (strict-origin), which keeps the Origin header real.
    poll = await make_poll()
    assert (await client.get(poll["manage"])).headers["Referrer-Policy"] == "strict-origin"
    headers = {"Origin": str(client.make_url("/")).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    closed = await client.post(
        poll["manage"], data={"action": "close"}, headers=headers, allow_redirects=False
    )
    assert closed.status == 303


async def test_a_form_naming_no_origin_is_refused_even_when_the_browser_says_same_origin(client, make_poll):
    poll = await make_poll()
    headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    refused = await client.post(poll["manage"], data={"action": "close"}, headers=headers)
    assert refused.status == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts: no browser, so no visitor's cookies to abuse
        {"Sec-Fetch-Site": "none"},  # typed or bookmarked by the person
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": "HTTP://127.0.0.1:{port}"},  # case does not matter in scheme and host
    ],
)
async def test_requests_that_show_no_other_site_are_accepted(client, make_question, votes_of, vote, headers):
    port = client.make_url("/").port
    headers = {k: v.format(port=port) for k, v in headers.items()}
    question = make_question()
    response = await vote(client, question["id"], question["choices"][0], headers=headers)
    assert response.status == 302
    assert votes_of(question["id"])[question["choices"][0]] == 1


async def test_other_port_on_the_same_host_is_another_origin(client, make_question, votes_of, vote):
    question = make_question()
    port = client.make_url("/").port
    headers = {"Origin": f"http://127.0.0.1:{port + 1}"}
    response = await vote(client, question["id"], question["choices"][0], headers=headers)
    assert response.status == 403
    assert set(votes_of(question["id"]).values()) == {0}


async def test_behind_https_the_origin_must_be_https(aiohttp_client, config, make_question, vote):
    client = await aiohttp_client(init_app(config={**config, "https": True}))
    question = make_question()
    authority = client.make_url("/").authority
    chosen = question["choices"][0]
    refused = await vote(client, question["id"], chosen, headers={"Origin": f"http://{authority}"})
    assert refused.status == 403
    accepted = await vote(client, question["id"], chosen, headers={"Origin": f"https://{authority}"})
    assert accepted.status == 302
    cookie = accepted.cookies[VOTER_COOKIE]
    assert cookie["secure"] is True and cookie["samesite"] == "Lax"


async def test_pages_are_not_refused_whatever_the_headers(client, make_question):
    question = make_question()
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert (await client.get(f"/poll/{question['id']}", headers=headers)).status == 200


@pytest.mark.parametrize("headers", FOREIGN)
async def test_cross_site_report_and_admin_forms_are_refused(
    client, make_question, sign_in, sync_engine, headers
):
    question = make_question()
    await sign_in(client)
    for path, data in (
        (f"/poll/{question['id']}/report", {"reason": "spam"}),
        (f"/admin/poll/{question['id']}", {"action": "delete", "reason": "x", "confirm": "yes"}),
        ("/admin/sign-in", {"password": "correct horse battery staple"}),
        ("/admin/sign-out", {}),
    ):
        response = await client.post(path, data=data, headers=headers, allow_redirects=False)
        assert response.status == 403 and CROSS_SITE in await response.text(), path
    assert stored.rows(sync_engine, schema.report) == 0
    assert stored.rows(sync_engine, schema.question) == stored.rows(sync_engine, schema.admin_session) == 1
