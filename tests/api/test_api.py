"""The JSON API through its real routes: reading, voting, making polls, and its errors."""

import io
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.maker import form as poll_form
from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.web import statuses, voting
from aiohttpdemo_polls.web.cache import cache_key
from tests.routing import resources

PROBLEM = "application/problem+json"


async def problem(response, status: int) -> dict:
    """The problem document of a refused request, checked for what RFC 9457 asks."""
    body = await response.text()
    assert response.status == status, body
    assert response.content_type == PROBLEM, body
    document = json.loads(body)
    assert document["status"] == status
    assert document["type"] == "about:blank" and document["title"]
    assert isinstance(document["detail"], str) and len(document["detail"]) > 10
    return document


async def post_json(session, path: str, body, **request):
    data = body if isinstance(body, (str, bytes, io.BytesIO)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **request.pop("headers", {})}
    return await session.post(path, data=data, headers=headers, **request)


async def test_list_gives_published_polls_newest_first_a_page_at_a_time(client, make_question):
    for n in range(25):
        make_question(f"Question {n}?", days=-30 + n)
    make_question("Not yet?", days=2)
    response = await client.get("/api/polls")
    assert response.status == 200 and response.content_type == "application/json"
    first = await response.json()
    assert [p["question_text"] for p in first["polls"]] == [f"Question {n}?" for n in range(24, 4, -1)]
    assert first["page"] == 1 and first["pages"] == 2
    assert first["next"] == "/api/polls?page=2"
    assert response.headers["Link"] == '</api/polls?page=2>; rel="next"'
    assert first["polls"][0]["links"]["self"] == f"/api/polls/{first['polls'][0]['id']}"
    second = await (await client.get(first["next"])).json()
    assert [p["question_text"] for p in second["polls"]] == [f"Question {n}?" for n in range(4, -1, -1)]
    assert second["next"] is None


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1" * 12, "1.5"])
async def test_a_malformed_page_is_a_400_problem_naming_the_field(client, page):
    document = await problem(await client.get("/api/polls", params={"page": page}), 400)
    assert "page" in document["errors"]


async def test_poll_shows_choices_counts_and_the_callers_own_vote(client, make_question, add_votes, vote):
    question = make_question("Tea or coffee?", choices=("Tea", "Coffee"), multiple=False)
    tea, coffee = question["choices"]
    add_votes(question["id"], {tea: 3, coffee: 1})
    before = await (await client.get(f"/api/polls/{question['id']}")).json()
    assert before["question_text"] == "Tea or coffee?" and before["closed"] is False
    assert before["counts_visible"] is True
    assert before["choices"] == [
        {"id": tea, "choice_text": "Tea", "votes": 3, "percent": 75.0},
        {"id": coffee, "choice_text": "Coffee", "votes": 1, "percent": 25.0},
    ]
    assert before["total"] == 4 and before["my_choices"] == []
    assert (await vote(client, question["id"], coffee)).status == 302  # the form, same cookie
    after = await (await client.get(f"/api/polls/{question['id']}")).json()
    assert after["my_choices"] == [coffee] and after["total"] == 5


async def test_unknown_or_unpublished_polls_are_404_problems(client, make_question):
    future = make_question("Later?", days=3)
    for path in (f"/api/polls/{future['id']}", "/api/polls/99999", "/api/polls/99999999999", "/api/nothing"):
        await problem(await client.get(path), 404)


async def test_a_wrong_method_is_a_405_problem_with_allow(client):
    response = await client.delete("/api/polls")
    await problem(response, 405)
    assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}


async def test_vote_counts_once_sets_the_voter_cookie_and_answers_with_the_ballot(
    client, make_question, votes_of, vote_rows_match_counters
):
    question = make_question("Left or right?", choices=("Left", "Right"), lock_votes=True)
    left, right = question["choices"]
    response = await post_json(client, f"/api/polls/{question['id']}/vote", {"choices": [left]})
    assert response.status == 200, await response.text()
    assert f"{voting.VOTER_COOKIE}=" in response.headers["Set-Cookie"]
    assert await response.json() == {
        "status": "counted",
        "message": "Your vote was counted.",
        "choices": [left],
        "links": {
            "self": f"/api/polls/{question['id']}",
            "vote": f"/api/polls/{question['id']}/vote",
            "page": f"/poll/{question['id']}",
            "results": f"/poll/{question['id']}/results",
        },
    }
    again = await post_json(client, f"/api/polls/{question['id']}/vote", {"choices": [right]})
    body = await again.json()
    assert again.status == 200 and "Set-Cookie" not in again.headers
    assert body["status"] == "already_voted" and body["message"] == voting.ALREADY_VOTED
    assert body["choices"] == [left]
    # The form sees the same voter: the API's cookie is the site's.
    form = await client.post(
        f"/poll/{question['id']}/vote", data={"choice": str(right)}, allow_redirects=False
    )
    assert form.headers["Location"].endswith("?already=1")
    assert votes_of(question["id"]) == {left: 1, right: 0}
    assert vote_rows_match_counters()


async def test_vote_changed_through_the_api_moves_the_count_where_the_poll_allows_it(
    client, make_question, votes_of, vote_rows_match_counters
):
    question = make_question("Tea or coffee?", choices=("Tea", "Coffee"))
    tea, coffee = question["choices"]
    path = f"/api/polls/{question['id']}/vote"
    assert (await (await post_json(client, path, {"choices": [tea]})).json())["status"] == "counted"
    changed = await (await post_json(client, path, {"choices": [coffee]})).json()
    assert changed["status"] == "changed" and changed["message"] == voting.VOTE_CHANGED
    assert changed["choices"] == [coffee]
    same = await (await post_json(client, path, {"choices": [coffee]})).json()
    assert same["status"] == "already_voted" and same["choices"] == [coffee]
    assert votes_of(question["id"]) == {tea: 0, coffee: 1}
    assert vote_rows_match_counters()


async def test_vote_follows_the_forms_rules(client, make_question, votes_of):
    single = make_question("One only?", choices=("A", "B"))
    other = make_question("Other?", choices=("C", "D"))
    path = f"/api/polls/{single['id']}/vote"
    document = await problem(await post_json(client, path, {"choices": single["choices"]}), 422)
    assert document["errors"]["choices"]
    await problem(await post_json(client, path, {"choices": [other["choices"][0]]}), 422)
    closed = make_question("Closed?", choices=("E", "F"), closed_at=datetime.now(UTC))
    document = await problem(
        await post_json(client, f"/api/polls/{closed['id']}/vote", {"choices": [closed["choices"][0]]}), 409
    )
    assert document["detail"] == voting.VOTING_CLOSED
    await problem(await post_json(client, "/api/polls/99999/vote", {"choices": [1]}), 404)
    assert set(votes_of(single["id"]).values()) == set(votes_of(closed["id"]).values()) == {0}


async def test_a_vote_sent_from_another_sites_page_is_refused_as_a_problem(client, make_question, votes_of):
    question = make_question()
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await post_json(
            client, f"/api/polls/{question['id']}/vote", {"choices": question["choices"][:1]}, headers=headers
        )
        await problem(response, 403)
    assert set(votes_of(question["id"]).values()) == {0}


BAD_BODIES = [
    ("{not json", 400, None),
    ('{"choices": [1', 400, None),
    (b"\xff\xfe{}", 400, None),
    ('{"choices": [NaN]}', 400, None),
    ('{"choices": [' + "9" * 5000 + "]}", 400, None),
    ("[" * 100_000 + "]" * 100_000, 400, None),
    ('"a string"', 400, None),
    ("[1, 2]", 400, None),
    ('{"choices": [1e400]}', 422, "choices"),
    ('{"choices": [99999999999999999999]}', 422, "choices"),
    ('{"choices": [true]}', 422, "choices"),
    ('{"choices": "1"}', 422, "choices"),
    ('{"choices": []}', 422, "choices"),
    ('{"choices": [1], "voter": "me"}', 422, "voter"),
    ("{}", 422, "choices"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
async def test_bad_vote_bodies_are_4xx_problems_and_count_nothing(
    client, make_question, votes_of, body, status, field
):
    question = make_question()
    document = await problem(await post_json(client, f"/api/polls/{question['id']}/vote", body), status)
    if field:
        assert field in document["errors"]
    assert set(votes_of(question["id"]).values()) == {0}


@pytest.mark.parametrize("path", ["/api/polls", "/api/polls/1/vote"])
async def test_wrong_content_type_and_oversized_bodies_are_problems(client, make_question, path):
    make_question()
    form = await client.post(path, data={"choices": "1"})
    assert (await problem(form, 415))["detail"].startswith("Send the body as JSON")
    big = io.BytesIO(json.dumps({"question_text": "x" * (1024 * 1024 + 10)}).encode())
    await problem(await post_json(client, path, big), 413)


async def test_create_answers_201_with_the_manage_link_once(client, stored_poll):
    body = {
        "question_text": " Which day? ",
        "choices": ["Monday", " ", "Friday"],
        "multiple": True,
        "closes_at": "2031-03-01T18:30:00+01:00",
    }
    response = await post_json(client, "/api/polls", body)
    assert response.status == 201, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    made = await response.json()
    assert response.headers["Location"] == f"/api/polls/{made['id']}"
    manage = made["manage_url"]
    assert manage.startswith(str(client.make_url("/")).rstrip("/") + f"/poll/{made['id']}/manage/")
    stored = stored_poll(made["id"])
    assert stored.question.question_text == "Which day?" and stored.choices == ["Monday", "Friday"]
    assert stored.question.multiple is True
    assert stored.question.closes_at == datetime.fromisoformat("2031-03-01T17:30:00+00:00")
    page = await client.get(manage.split(str(client.make_url("/")).rstrip("/"), 1)[1])
    assert page.status == 200 and "Which day?" in await page.text()
    listed = await (await client.get("/api/polls")).json()
    assert "manage_url" not in json.dumps(listed) and made["manage_url"] not in json.dumps(listed)


async def test_create_uses_the_forms_rules_and_messages(client, sync_engine):
    document = await problem(
        await post_json(client, "/api/polls", {"question_text": "", "choices": ["A"]}), 422
    )
    assert document["errors"] == {
        "question_text": poll_form.QUESTION_REQUIRED,
        "choices": poll_form.TOO_FEW_CHOICES,
    }
    document = await problem(
        await post_json(client, "/api/polls", {"question_text": "Q?", "choices": ["Same", "same", "Other"]}),
        422,
    )
    assert document["errors"] == {"choices/1": poll_form.DUPLICATE_CHOICE}
    document = await problem(
        await post_json(
            client,
            "/api/polls",
            {"question_text": "Q?", "choices": ["A", "B"], "closes_at": "2001-01-01T00:00Z"},
        ),
        422,
    )
    assert document["errors"] == {"closes_at": poll_form.CLOSES_AT_PAST}
    document = await problem(
        await post_json(
            client,
            "/api/polls",
            {
                "question_text": 5,
                "choices": "A",
                "multiple": "yes",
                "closes_at": 3,
                "results": "never",
                "x": 1,
            },
        ),
        422,
    )
    assert document["errors"] == {"x": "This field is not known here."}
    document = await problem(
        await post_json(
            client,
            "/api/polls",
            {"question_text": 5, "choices": "A", "multiple": "yes", "closes_at": 3, "results": "never"},
        ),
        422,
    )
    assert set(document["errors"]) == {"question_text", "choices", "multiple", "closes_at", "results"}
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.question)).scalar_one() == 0


@pytest.mark.parametrize(
    ("method", "page_path", "api_path", "status"),
    [
        ("GET", "/nothing", "/api/nothing", 404),
        ("GET", "/poll/99999", "/api/polls/99999", 404),
        ("DELETE", "/", "/api/openapi.json", 405),
    ],
)
async def test_the_app_that_took_the_request_writes_its_error_a_page_or_a_problem(
    client, method, page_path, api_path, status
):
    page = await client.request(method, page_path)
    assert page.status == status and page.content_type == "text/html"
    assert statuses.STATUSES[status].page in await page.text()
    answer = await client.request(method, api_path)
    assert (await problem(answer, status))["detail"] == statuses.STATUSES[status].api
    if status == 405:
        assert "GET" in page.headers["Allow"] and "GET" in answer.headers["Allow"]


async def test_openapi_document_describes_every_api_route(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("/api/polls", "get"),
        ("/api/polls", "post"),
        ("/api/polls/{question_id}", "get"),
        ("/api/polls/{question_id}/vote", "post"),
        ("/api/polls/{question_id}/vote", "delete"),
        ("/api/openapi.json", "get"),
    }
    # A route's path with its parameters' patterns left out ("formatter"), or a plain path.
    routes = {r.get_info().get("formatter") or r.get_info().get("path") or "" for r in resources(client.app)}
    api_routes = {route for route in routes if route.startswith("/api/")}
    assert api_routes == {path for path, _ in operations}


async def test_the_cached_list_shows_a_new_poll_at_once(client):
    assert (await (await client.get("/api/polls")).json())["polls"] == []
    made = await (
        await post_json(client, "/api/polls", {"question_text": "New?", "choices": ["A", "B"]})
    ).json()
    listed = await (await client.get("/api/polls")).json()
    assert [p["id"] for p in listed["polls"]] == [made["id"]]


async def test_poll_read_hides_counts_until_the_caller_voted_when_the_maker_says_so(
    client, make_question, add_votes
):
    question = make_question("Secret ballot?", choices=("Yes", "No"), results="after_vote")
    yes, _ = question["choices"]
    add_votes(question["id"], {yes: 3})
    path = f"/api/polls/{question['id']}"
    hidden = await (await client.get(path)).json()
    assert hidden["counts_visible"] is False and "total" not in hidden
    assert all(set(c) == {"id", "choice_text"} for c in hidden["choices"])
    await post_json(client, f"{path}/vote", {"choices": [yes]})
    shown = await (await client.get(path)).json()
    assert shown["counts_visible"] is True and shown["total"] == 4
    assert [c["votes"] for c in shown["choices"]] == [4, 0]


async def test_poll_read_without_a_voter_is_cached_and_follows_a_change_made_in_sql(
    client, anonymous, make_question, sync_engine, eventually, settled
):
    question = make_question("Before?", choices=("Yes", "No"))
    await settled()  # the notice of its own making would empty the cache it is about to fill
    path = f"/api/polls/{question['id']}"
    assert (await (await anonymous.get(path)).json())["question_text"] == "Before?"
    assert client.app[cache_key].peek(("api_poll", question["id"])) is not None
    with sync_engine.begin() as conn:  # as psql would: only the schema's triggers tell the app
        conn.execute(
            sa.text("UPDATE question SET question_text = 'After?' WHERE id = :id"), {"id": question["id"]}
        )

    async def renamed() -> bool:
        return (await (await anonymous.get(path)).json())["question_text"] == "After?"

    await eventually(renamed)
