"""Voter codes through the JSON API: `code` in the vote body, with the voting form's rules,
and 403/422 problem documents naming the field."""

import pytest
import stored

from aiohttpdemo_polls.store import codes
from aiohttpdemo_polls.web import voting
from tests.api.test_api import post_json, problem


def vote_path(question) -> str:
    return f"/api/polls/{question['id']}/vote"


async def test_a_poll_says_whether_it_requires_a_code(client, make_code_poll, make_question):
    question, _ = make_code_poll()
    assert (await (await client.get(f"/api/polls/{question['id']}")).json())["requires_code"] is True
    plain = make_question()
    assert (await (await client.get(f"/api/polls/{plain['id']}")).json())["requires_code"] is False


async def test_a_vote_with_a_code_is_the_codes_ballot_from_any_client(
    client, anonymous, make_code_poll, votes_of, sync_engine
):
    question, made = make_code_poll()
    yes, no = question["choices"]
    counted = await post_json(client, vote_path(question), {"choices": [yes], "code": made[0].lower()})
    assert counted.status == 200, await counted.text()
    assert (await counted.json())["status"] == "counted"
    changed = await post_json(
        anonymous, vote_path(question), {"choices": [no], "code": codes.grouped(made[0])}
    )
    assert (await changed.json())["status"] == "changed"
    same = await post_json(anonymous, vote_path(question), {"choices": [no], "code": made[0]})
    body = await same.json()
    assert body["status"] == "already_voted" and body["choices"] == [no]
    assert votes_of(question["id"]) == {yes: 0, no: 1}
    assert len(stored.voters(sync_engine, question["id"])) == 1


@pytest.mark.parametrize(
    ("body_code", "message"),
    [(None, voting.CODE_NEEDED), ("", voting.CODE_NEEDED), ("7K3QX-M9PDA", voting.CODE_WRONG)],
)
async def test_a_missing_or_wrong_code_is_a_403_problem_naming_the_field(
    client, make_code_poll, votes_of, body_code, message
):
    question, _ = make_code_poll()
    body = {"choices": [question["choices"][0]], **({"code": body_code} if body_code is not None else {})}
    refused = await problem(await post_json(client, vote_path(question), body), 403)
    assert refused["detail"] == message and refused["errors"] == {"code": message}
    assert sum(votes_of(question["id"]).values()) == 0


async def test_a_used_code_on_a_locked_poll_is_a_403_problem(client, anonymous, make_code_poll, votes_of):
    question, made = make_code_poll(lock_votes=True)
    yes, no = question["choices"]
    assert (await post_json(client, vote_path(question), {"choices": [yes], "code": made[0]})).status == 200
    refused = await problem(
        await post_json(anonymous, vote_path(question), {"choices": [no], "code": made[0]}), 403
    )
    assert refused["errors"] == {"code": voting.CODE_USED}
    assert votes_of(question["id"]) == {yes: 1, no: 0}


@pytest.mark.parametrize(
    "body_code", [7, ["7K3QXM9PDA"], {"code": "x"}, True, "7K3QX", "7K3QX-M9PDÄ", "7" * 41, "x" * 100_000]
)
async def test_a_code_that_cannot_be_one_is_a_422_problem_naming_the_field(
    client, make_code_poll, votes_of, body_code
):
    question, _ = make_code_poll()
    body = {"choices": [question["choices"][0]], "code": body_code}
    refused = await problem(await post_json(client, vote_path(question), body), 422)
    assert refused["errors"] == {"code": voting.CODE_SHAPE}
    assert sum(votes_of(question["id"]).values()) == 0


async def test_the_openapi_document_describes_the_code_and_its_refusals(client):
    document = await (await client.get("/api/openapi.json")).json()
    vote = document["components"]["schemas"]["VoteRequest"]["properties"]
    assert vote["code"]["type"] == ["string", "null"] and "voter code" in vote["code"]["description"]
    assert "requires_code" in document["components"]["schemas"]["Poll"]["required"]
    refusals = document["paths"]["/api/polls/{question_id}/vote"]["post"]["responses"]
    assert "voter code" in refusals["403"]["description"]
