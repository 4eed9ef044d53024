"""A poll's page and results, and the ids that are not polls."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.store import schema

# script (`\d` in the route admits them): each a 404 page, never a 500.
BAD_IDS = [
    "abc",
    "-1",
    "1.5",
    "0",
    "12345",
    "2147483648",
    "99999999999",
    "99999999999999999999",
    pytest.param("9" * 5000, id="5000-digits"),  # past Python's int() limit too
    "\uff11",
    "\u0661",
]


async def test_poll_page_shows_question_and_labelled_radio_per_choice(client, make_question):
    question = make_question("Best snack?", choices=("Crisps", "Fruit"))
    page = await (await client.get(f"/poll/{question['id']}")).text()
    assert "Best snack?" in page
    radios = re.findall(r'<input type="radio" name="choice" id="(\w+)" value="(\d+)"', page)
    assert [int(value) for _, value in radios] == question["choices"]
    for input_id, _ in radios:
        assert f'<label for="{input_id}">' in page
    assert f'action="/poll/{question["id"]}/vote"' in page
    assert ">Vote</button>" in page


async def test_future_question_page_is_404(client, make_question, vote, votes_of):
    question = make_question("Future question.", days=5)
    for path in ("", "/results", "/live"):
        response = await client.get(f"/poll/{question['id']}{path}")
        assert response.status == 404
    assert (await vote(client, question["id"], question["choices"][0])).status == 404
    assert set(votes_of(question["id"]).values()) == {0}


POLL_ROUTES = [
    ("GET", ""),
    ("GET", "/results"),
    ("POST", "/vote"),
    ("GET", "/live"),
    ("GET", "/manage/x"),
    ("POST", "/manage/x"),
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("method,suffix", POLL_ROUTES)
async def test_unknown_or_malformed_ids_are_404_on_every_poll_route(
    client, make_question, bad_id, method, suffix
):
    make_question()
    response = await client.request(method, f"/poll/{bad_id}{suffix}", data={"choice": "1"})
    assert response.status == 404
    page = await response.text()
    assert "Not Found" in page and 'href="/"' in page


@pytest.mark.parametrize("method,suffix", POLL_ROUTES[:3])
async def test_the_largest_id_postgresql_holds_is_looked_up(
    client, make_question, sync_engine, method, suffix
):
    """The id check's edge: 2147483647 is a poll's id, one more is none."""
    with sync_engine.begin() as conn:
        conn.execute(sa.text("ALTER SEQUENCE question_id_seq RESTART WITH 2147483647"))
    question = make_question(choices=("Yes", "No"))
    assert question["id"] == 2**31 - 1
    response = await client.request(
        method, f"/poll/{question['id']}{suffix}", data={"choice": question["choices"][0]}
    )
    assert response.status == 200
    assert "What&#39;s new?" in await response.text()


async def test_results_show_votes_percentages_bars_total_and_link_back(client, make_question, sync_engine):
    question = make_question("Colour?", choices=("Red", "Green", "Blue"))
    red, green, blue = question["choices"]
    with sync_engine.begin() as conn:
        for choice_id, votes in ((red, 1), (green, 3), (blue, 0)):
            conn.execute(sa.update(schema.choice).where(schema.choice.c.id == choice_id).values(votes=votes))
    page = await (await client.get(f"/poll/{question['id']}/results")).text()
    assert re.search(r'<span class="votes">1</span> vote · <span class="percent">25.0%</span>', page)
    assert re.search(r'<span class="votes">3</span> votes · <span class="percent">75.0%</span>', page)
    assert re.search(r'<span class="votes">0</span> votes · <span class="percent">0.0%</span>', page)
    assert re.findall(r'<rect class="fill" width="([\d.]+)"', page) == ["25.0", "75.0", "0.0"]
    assert '<span class="total-votes">4</span>' in page
    assert f'href="/poll/{question["id"]}"' in page


async def test_results_of_poll_without_votes_show_zero_percent(client, make_question):
    question = make_question()
    page = await (await client.get(f"/poll/{question['id']}/results")).text()
    assert page.count('<span class="percent">0.0%</span>') == 3
    assert '<span class="total-votes">0</span>' in page


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", "What's new?", 'Say "hi" & <b>bye</b>'])
async def test_question_and_choice_text_show_exactly_as_typed(client, make_question, text):
    from markupsafe import escape

    question = make_question(text, choices=(text, "Other"))
    for path in ("/", f"/poll/{question['id']}", f"/poll/{question['id']}/results"):
        page = await (await client.get(path)).text()
        assert "<script>alert(1)</script>" not in page
        assert "<b>bye</b>" not in page
        assert str(escape(text)) in page


async def test_every_page_links_to_the_new_poll_form(client, make_question):
    question = make_question()
    for path in ("/", f"/poll/{question['id']}", f"/poll/{question['id']}/results", "/nowhere"):
        page = await (await client.get(path)).text()
        assert '<a href="/poll/new">New poll</a>' in page, path


async def test_closed_poll_page_shows_results_and_says_voting_closed(client, make_question, add_votes):
    question = make_question(
        "Lunch on Friday?", choices=("Yes", "No"), closed_at=datetime.now(UTC) - timedelta(hours=1)
    )
    add_votes(question["id"], {question["choices"][0]: 3})
    response = await client.get(f"/poll/{question['id']}")
    assert response.status == 200
    page = await response.text()
    assert "Voting closed" in page
    assert '<span class="votes">3</span>' in page
    assert 'name="choice"' not in page


@pytest.fixture
def statements(monkeypatch) -> list:
    """Every statement the app sends through aiopg.sa, in order (they still run for real)."""
    from aiopg.sa.connection import SAConnection

    sent: list = []
    execute = SAConnection.execute

    def spy(self, query, *args, **kwargs):
        sent.append(query)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(SAConnection, "execute", spy)
    return sent


async def test_index_is_one_query_and_poll_pages_at_most_two(client, make_question, add_votes, statements):
    """No N+1: the number of statements does not grow with the number of polls or choices."""
    questions = [
        make_question(f"Poll {n}?", choices=tuple(f"Choice {i}" for i in range(8))) for n in range(25)
    ]
    add_votes(questions[0]["id"], {questions[0]["choices"][0]: 3})
    for path in ("/", "/?page=2", f"/poll/{questions[0]['id']}", f"/poll/{questions[1]['id']}/results"):
        statements.clear()
        response = await client.get(path)
        assert response.status == 200
        limit = 1 if path.startswith("/?") or path == "/" else 2
        assert 1 <= len(statements) <= limit, (path, statements)
