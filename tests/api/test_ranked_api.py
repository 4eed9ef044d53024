"""A ranked poll through the API: made with "kind": "ranked", voted with {"ranking": [...]},
read with its rounds and head to head, and every wrong ranking a 422 naming the field."""

import json

import pytest

from tests.api.test_api import post_json, problem


async def test_a_ranked_poll_is_made_voted_and_read_with_its_count(client, new_browser, votes_of):
    made = await post_json(
        client,
        "/api/polls",
        {"question_text": "Who chairs?", "choices": ["Ann", "Ben", "Cy"], "kind": "ranked"},
    )
    assert made.status == 201, await made.text()
    poll_id = (await made.json())["id"]
    poll = await (await client.get(f"/api/polls/{poll_id}")).json()
    assert poll["kind"] == "ranked" and poll["my_ranking"] == []
    ann, ben, cy = (c["id"] for c in poll["choices"])
    for ranking in ([ann, ben], [ben, ann], [cy, ben], [ann]):
        answer = await post_json(new_browser(client), f"/api/polls/{poll_id}/vote", {"ranking": ranking})
        body = await answer.json()
        assert answer.status == 200 and body["status"] == "counted"
        assert body["ranking"] == body["choices"] == ranking
    mine = await post_json(client, f"/api/polls/{poll_id}/vote", {"ranking": [cy, ann]})
    assert (await mine.json())["status"] == "counted"
    changed = await post_json(client, f"/api/polls/{poll_id}/vote", {"ranking": [ben, cy]})
    assert (await changed.json())["status"] == "changed"
    read = await (await client.get(f"/api/polls/{poll_id}")).json()
    assert read["my_ranking"] == [ben, cy]
    count = read["count"]
    assert count["ballots"] == 5
    first = count["rounds"][0]
    assert {v["choice"]: v["votes"] for v in first["votes"]} == {ann: 2, ben: 2, cy: 1}
    assert first["eliminated"] == [cy] and first["transfers"] == [{"to": ben, "ballots": 1}]
    assert count["winner"] == ben
    pairs = {(p["choice"], p["over"]): p["voters"] for p in count["head_to_head"]}
    assert pairs[ben, ann] == 3 and pairs[ann, ben] == 2
    assert count["seed"] == poll_id and "drawn by lot" in count["tie_rule"]
    assert votes_of(poll_id) == {ann: 3, ben: 4, cy: 2}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ranking": []}, "ranking"),
        ({"ranking": "1,2"}, "ranking"),
        ({"ranking": [1, 1]}, "ranking"),
        ({"ranking": [2**31]}, "ranking"),
        ({"ranking": [1], "choices": [1]}, "ranking"),
        ({"choices": [1]}, "choices"),
    ],
)
async def test_an_invalid_ranking_is_a_422_naming_the_field(client, make_question, votes_of, body, field):
    poll = make_question(choices=("A", "B", "C"), kind="ranked")
    a = poll["choices"][0]
    sent = json.loads(json.dumps(body).replace("[1]", f"[{a}]").replace("[1, 1]", f"[{a}, {a}]"))
    document = await problem(await post_json(client, f"/api/polls/{poll['id']}/vote", sent), 422)
    assert field in document["errors"]
    assert sum(votes_of(poll["id"]).values()) == 0


async def test_a_ranking_for_a_poll_with_choices_or_naming_another_polls_choice_is_a_422(
    client, make_question
):
    plain = make_question(choices=("Yes", "No"))
    ranked = make_question(choices=("A", "B", "C"), kind="ranked")
    wrong_kind = await problem(
        await post_json(client, f"/api/polls/{plain['id']}/vote", {"ranking": plain["choices"]}), 422
    )
    assert "not ranked" in wrong_kind["errors"]["ranking"]
    foreign = await problem(
        await post_json(client, f"/api/polls/{ranked['id']}/vote", {"ranking": [plain["choices"][0]]}), 422
    )
    assert "ranking" in foreign["errors"]


async def test_a_ranked_poll_needs_three_choices_in_the_api(client):
    answer = await post_json(
        client, "/api/polls", {"question_text": "Q?", "choices": ["A", "B"], "kind": "ranked"}
    )
    document = await problem(answer, 422)
    assert document["errors"]["choices"] == "Give at least 3 choices to rank."
    for kind in ("dice", {}, ["ranked"], None):
        wrong = await problem(
            await post_json(client, "/api/polls", {"question_text": "Q?", "kind": kind}), 422
        )
        assert "kind" in wrong["errors"]
