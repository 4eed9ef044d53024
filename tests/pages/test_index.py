"""The index: published polls only, newest first, paginated."""

import re

import pytest


async def test_no_questions_says_no_polls_are_available(client):
    response = await client.get("/")
    assert response.status == 200
    assert "No polls are available." in await response.text()


async def test_past_question_is_listed(client, make_question):
    make_question("Past question.", days=-30)
    page = await (await client.get("/")).text()
    assert "Past question." in page
    assert "No polls are available." not in page


async def test_future_question_is_not_listed(client, make_question):
    make_question("Future question.", days=30)
    page = await (await client.get("/")).text()
    assert "Future question." not in page
    assert "No polls are available." in page


async def test_future_and_past_question_only_past_is_listed(client, make_question):
    make_question("Past question.", days=-30)
    make_question("Future question.", days=30)
    page = await (await client.get("/")).text()
    assert "Past question." in page
    assert "Future question." not in page


async def test_two_past_questions_are_listed_newest_first(client, make_question):
    make_question("Past question 1.", days=-30)
    make_question("Past question 2.", days=-5)
    page = await (await client.get("/")).text()
    assert page.index("Past question 2.") < page.index("Past question 1.")


async def test_each_question_links_to_its_page(client, make_question):
    question = make_question("Linked?")
    page = await (await client.get("/")).text()
    assert f'href="/poll/{question["id"]}"' in page


async def test_index_shows_twenty_polls_a_page_with_links(client, make_question):
    for n in range(25):
        make_question(f"Poll number {n:02d}?", days=-(n + 1))
    first = await (await client.get("/")).text()
    assert len(re.findall(r"Poll number \d\d\?", first)) == 20
    assert "Poll number 00?" in first and "Poll number 19?" in first
    assert 'href="/?page=2"' in first
    second = await (await client.get("/?page=2")).text()
    assert len(re.findall(r"Poll number \d\d\?", second)) == 5
    assert "Poll number 24?" in second
    assert 'href="/?page=1"' in second


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "2", "99999999999", ""])
async def test_out_of_range_or_malformed_page_is_404(client, make_question, page):
    make_question()
    response = await client.get("/", params={"page": page})
    assert response.status == 404
    assert "Back to all polls" in await response.text()
