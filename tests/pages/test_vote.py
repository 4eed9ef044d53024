"""Voting: POST-redirect-GET, counted by the database, bad input counting nothing."""

import pytest

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web.voting import VOTER_COOKIE


async def test_vote_adds_one_and_redirects_to_results(client, make_question, votes_of, vote):
    question = make_question()
    chosen = question["choices"][1]
    response = await vote(client, question["id"], chosen)
    assert response.status == 302
    assert response.headers["Location"] == f"/poll/{question['id']}/results"
    assert votes_of(question["id"]) == {c: int(c == chosen) for c in question["choices"]}


async def test_vote_redirect_lands_on_results_marking_the_choice(client, make_question, vote):
    question = make_question(choices=("Yes", "No"))
    response = await vote(client, question["id"], question["choices"][0], allow_redirects=True)
    assert response.status == 200
    assert response.url.path == f"/poll/{question['id']}/results"
    page = await response.text()
    assert '<span class="votes">1</span> vote ·' in page
    assert "(your vote)" in page


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"choice": ""},
        {"choice": "abc"},
        {"choice": "1.5"},
        {"choice": "-1"},
        {"choice": "0"},
        {"choice": "99999999999"},
        {"choice": "99999999999999999999999999"},
        {"other": "1"},
    ],
)
async def test_missing_or_malformed_choice_rerenders_form_with_message(client, make_question, votes_of, form):
    question = make_question()
    response = await client.post(f"/poll/{question['id']}/vote", data=form)
    assert response.status == 400
    page = await response.text()
    assert "You didn&#39;t select a choice." in page
    assert 'name="choice"' in page
    assert set(votes_of(question["id"]).values()) == {0}


async def test_choice_of_another_question_is_refused_and_counts_nothing(
    client, make_question, votes_of, vote
):
    question = make_question("First?")
    other = make_question("Second?")
    response = await vote(client, question["id"], other["choices"][0])
    assert response.status == 400
    assert "You didn&#39;t select a choice." in await response.text()
    assert set(votes_of(question["id"]).values()) == {0}
    assert set(votes_of(other["id"]).values()) == {0}


async def test_get_on_vote_is_405_in_the_site_layout(client, make_question):
    question = make_question()
    response = await client.get(f"/poll/{question['id']}/vote")
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    page = await response.text()
    assert "Method Not Allowed" in page and 'href="/"' in page


async def test_vote_sets_a_long_lived_http_only_voter_cookie(client, make_question, vote):
    question = make_question()
    response = await vote(client, question["id"], question["choices"][0])
    cookie = response.cookies[VOTER_COOKIE]
    assert len(cookie.value) >= 22  # at least 128 random bits, URL-safe base64
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 365 * 24 * 3600
    assert not cookie["secure"]


@pytest.mark.parametrize("https", [False, True])
@pytest.mark.parametrize("via", ["form", "api"])
async def test_new_voter_gets_one_set_cookie_header_with_these_attributes(
    aiohttp_client, config, make_question, https, via
):
    client = await aiohttp_client(init_app(config={**config, "https": https}))
    question = make_question()
    scheme = "https" if https else "http"
    origin = {"Origin": f"{scheme}://{client.make_url('/').authority}"}
    if via == "form":
        url, body = f"/poll/{question['id']}/vote", {"data": {"choice": str(question["choices"][0])}}
    else:
        url, body = f"/api/polls/{question['id']}/vote", {"json": {"choices": [question["choices"][0]]}}
    response = await client.post(url, **body, headers=origin, allow_redirects=False)
    assert response.status == (302 if via == "form" else 200), await response.text()
    [header] = response.headers.getall("Set-Cookie")
    voter = response.cookies[VOTER_COOKIE].value
    secure = "; Secure" if https else ""
    assert header == f"{VOTER_COOKIE}={voter}; HttpOnly; Max-Age=31536000; Path=/; SameSite=Lax{secure}"
