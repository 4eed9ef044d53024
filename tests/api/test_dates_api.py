"""Date polls in the JSON API: made with `"kind": "dates"`, read with each option's date or
start and end in RFC 3339 with the poll's offset, answered with a name and an answer for every
option; every wrong field is a 422 problem naming it. The OpenAPI document says all of it."""

import pytest

NEW = {
    "kind": "dates",
    "question_text": "Retro?",
    "timezone": "Europe/Berlin",
    "options": [
        {"date": "2030-03-01"},
        {"start": "2030-01-15T10:00", "duration_minutes": 60},
        {"start": "2030-07-15T10:00", "duration_minutes": 90},
    ],
}


async def make(client, **changes) -> int:
    response = await client.post("/api/polls", json={**NEW, **changes})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def test_date_poll_made_and_read_gives_dates_and_rfc3339_times_with_the_polls_offset(client):
    question_id = await make(client, names_hidden=False)
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    assert poll["kind"] == "dates" and poll["timezone"] == "Europe/Berlin" and poll["settled_option"] is None
    day, winter, summer = poll["choices"]
    assert day["date"] == "2030-03-01" and "starts_at" not in day
    assert (winter["starts_at"], winter["ends_at"]) == (
        "2030-01-15T10:00:00+01:00",
        "2030-01-15T11:00:00+01:00",
    )
    assert (summer["starts_at"], summer["ends_at"]) == (
        "2030-07-15T10:00:00+02:00",
        "2030-07-15T11:30:00+02:00",
    )


async def test_answering_through_the_api_counts_and_shows_the_row(
    client, anonymous, vote_rows_match_counters
):
    question_id = await make(client)
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    ids = [str(c["id"]) for c in poll["choices"]]
    body = {"name": "Bo", "answers": dict(zip(ids, ["yes", "if_need_be", "no"], strict=True))}
    response = await anonymous.post(f"/api/polls/{question_id}/vote", json=body)
    answered = await response.json()
    assert response.status == 200 and answered["status"] == "counted"
    assert answered["answers"] == body["answers"]
    again = await client.post(f"/api/polls/{question_id}/vote", json={**body, "name": "Ada"})
    assert (await again.json())["status"] == "counted"
    changed = await client.post(
        f"/api/polls/{question_id}/vote", json={"name": "Ada", "answers": dict.fromkeys(ids, "no")}
    )
    assert (await changed.json())["status"] == "changed"
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    assert [(c["votes"], c["if_need_be"]) for c in poll["choices"]] == [(1, 0), (0, 1), (0, 0)]
    assert {p["name"] for p in poll["participants"]} == {"Bo", "Ada"}
    assert poll["my_answers"] == dict.fromkeys(ids, "no")
    assert vote_rows_match_counters()


async def test_names_hidden_leaves_the_rows_out_of_the_api(client, anonymous):
    question_id = await make(client, names_hidden=True)
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    answers = {str(c["id"]): "yes" for c in poll["choices"]}
    await anonymous.post(f"/api/polls/{question_id}/vote", json={"name": "Secret", "answers": answers})
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    assert poll["participants"] == [] and poll["choices"][0]["votes"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "answers": {}}, "name"),
        ({"name": "x" * 65, "answers": {}}, "name"),
        ({"name": "Bo", "answers": []}, "answers"),
        ({"name": "Bo", "answers": {"1": "yes", "2": "no"}}, "answers/3"),
        ({"name": "Bo", "answers": {"1": "yes", "2": "no", "3": "maybe"}}, "answers/3"),
        ({"name": "Bo", "answers": {"1": "yes", "2": "no", "3": "no", "77": "no"}}, "answers/77"),
    ],
)
async def test_bad_answers_are_422_problems_naming_the_field(client, body, field):
    question_id = await make(client)
    response = await client.post(f"/api/polls/{question_id}/vote", json=body)
    problem = await response.json()
    assert response.status == 422 and response.content_type == "application/problem+json"
    assert field in problem["errors"]


async def test_answers_to_a_choices_poll_and_choices_to_a_date_poll_are_422(client, make_question):
    choices = make_question("Lunch?", choices=("A", "B"))
    response = await client.post(
        f"/api/polls/{choices['id']}/vote", json={"name": "Bo", "answers": {"1": "yes"}}
    )
    assert response.status == 422 and "answers" in (await response.json())["errors"]
    question_id = await make(client)
    response = await client.post(f"/api/polls/{question_id}/vote", json={"choices": [question_id]})
    assert response.status == 422 and "choices" in (await response.json())["errors"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": 5}, "timezone"),
        (
            {"options": [{"start": "2030-01-15T10:00", "duration_minutes": 0}, {"date": "2030-03-01"}]},
            "options/0/duration_minutes",
        ),
        (
            {"options": [{"start": "2030-01-15T10:00", "duration_minutes": 1441}, {"date": "2030-03-01"}]},
            "options/0/duration_minutes",
        ),
        ({"options": [{"date": "2030-03-01"}, {"date": "2030-03-01"}]}, "options/1"),
        ({"options": [{"start": "2030-01-15T10:00", "duration_minutes": 60}] * 2}, "options/1"),
        (
            {"options": [{"start": "2030-03-31T02:30", "duration_minutes": 60}, {"date": "2030-03-01"}]},
            "options/0/start",
        ),
        ({"options": [{"start": "soon", "duration_minutes": 60}, {"date": "2030-03-01"}]}, "options/0/start"),
        ({"options": [{"date": "2030-02-30"}, {"date": "2030-03-01"}]}, "options/0/date"),
        ({"options": [{"when": "2030-02-03"}, {"date": "2030-03-01"}]}, "options/0"),
        ({"options": [{"date": "2030-03-01"}]}, "options"),
        ({"options": "tomorrow"}, "options"),
        ({"choices": ["a", "b"]}, "choices"),
        ({"kind": "lottery"}, "kind"),
        ({"kind": {}}, "kind"),
        ({"names_hidden": "yes"}, "names_hidden"),
    ],
)
async def test_bad_new_date_polls_are_422_problems_naming_the_field(client, changes, field):
    response = await client.post("/api/polls", json={**NEW, **changes})
    assert response.status == 422, await response.text()
    assert field in (await response.json())["errors"]


async def test_openapi_document_describes_date_polls(client):
    document = await (await client.get("/api/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert schemas["NewDatePoll"]["properties"]["kind"] == {"const": "dates"}
    assert set(schemas["DateAnswers"]["required"]) == {"name", "answers"}
    assert {"date", "starts_at", "ends_at", "if_need_be"} <= schemas["Choice"]["properties"].keys()
    vote = document["paths"]["/api/polls/{question_id}/vote"]["post"]["requestBody"]
    assert {"$ref": "#/components/schemas/DateAnswers"} in vote["content"]["application/json"]["schema"][
        "oneOf"
    ]


async def test_poll_list_says_each_polls_kind(client, make_question):
    make_question("Lunch?", choices=("A", "B"))
    await make(client)
    listed = await (await client.get("/api/polls")).json()
    assert sorted(p["kind"] for p in listed["polls"]) == ["choices", "dates"]


async def test_a_locked_row_answered_again_gives_back_the_row_as_stored(client):
    question_id = await make(client, lock_votes=True)
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    ids = [str(c["id"]) for c in poll["choices"]]
    await client.post(
        f"/api/polls/{question_id}/vote", json={"name": "Ada", "answers": dict.fromkeys(ids, "yes")}
    )
    again = await client.post(
        f"/api/polls/{question_id}/vote", json={"name": "Bob", "answers": dict.fromkeys(ids, "no")}
    )
    body = await again.json()
    assert body["status"] == "already_voted"
    assert body["name"] == "Ada" and body["answers"] == dict.fromkeys(ids, "yes")
