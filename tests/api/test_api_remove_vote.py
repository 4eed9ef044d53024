"""`DELETE /api/polls/{id}/vote`: the caller takes its vote back, as "Remove my vote" does."""

import json

from aiohttpdemo_polls.web.voting import NO_VOTE_TO_REMOVE, REMOVAL_CLOSED, VOTE_REMOVED, VOTES_FINAL
from tests.api.test_api import post_json, problem


async def test_delete_removes_the_callers_vote_and_the_count_drops(
    client, make_question, votes_of, vote_rows_match_counters
):
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    assert (await post_json(client, f"/api/polls/{question['id']}/vote", {"choices": [yes]})).status == 200
    response = await client.delete(f"/api/polls/{question['id']}/vote")
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["message"], body["choices"]) == ("removed", VOTE_REMOVED, [])
    assert body["links"]["self"] == f"/api/polls/{question['id']}"
    assert votes_of(question["id"]) == {yes: 0, no: 0}
    assert vote_rows_match_counters()
    read = await (await client.get(f"/api/polls/{question['id']}")).json()
    assert read["my_choices"] == [] and read["total"] == 0
    # Gone now: a second DELETE finds nothing to remove.
    document = await problem(await client.delete(f"/api/polls/{question['id']}/vote"), 404)
    assert document["detail"] == NO_VOTE_TO_REMOVE


async def test_delete_without_a_vote_or_poll_is_a_404_problem(anonymous, make_question):
    question = make_question()
    await problem(await anonymous.delete(f"/api/polls/{question['id']}/vote"), 404)
    await problem(await anonymous.delete("/api/polls/999999/vote"), 404)


async def test_delete_on_a_closed_or_locked_poll_is_a_409_problem(client, make_question, run_sql, votes_of):
    closing = make_question("Closing?")
    locked = make_question("Locked?", lock_votes=True)
    for poll in (closing, locked):
        answer = await post_json(client, f"/api/polls/{poll['id']}/vote", {"choices": [poll["choices"][0]]})
        assert answer.status == 200
    run_sql("UPDATE question SET closed_at = now() WHERE id = :id", id=closing["id"])
    document = await problem(await client.delete(f"/api/polls/{closing['id']}/vote"), 409)
    assert document["detail"] == REMOVAL_CLOSED
    document = await problem(await client.delete(f"/api/polls/{locked['id']}/vote"), 409)
    assert document["detail"] == VOTES_FINAL
    assert sum(votes_of(closing["id"]).values()) == sum(votes_of(locked["id"]).values()) == 1


async def test_delete_sent_from_another_sites_page_is_refused(client, make_question, votes_of):
    question = make_question()
    await post_json(client, f"/api/polls/{question['id']}/vote", {"choices": [question["choices"][0]]})
    response = await client.delete(
        f"/api/polls/{question['id']}/vote", headers={"Origin": "https://evil.example"}
    )
    await problem(response, 403)
    assert sum(votes_of(question["id"]).values()) == 1


async def test_the_openapi_document_describes_the_delete(client):
    document = json.loads(await (await client.get("/api/openapi.json")).text())
    operation = document["paths"]["/api/polls/{question_id}/vote"]["delete"]
    assert operation["operationId"] == "removeVote"
    assert set(operation["responses"]) == {"200", "400", "403", "404", "405", "409", "503"}
    assert "removed" in document["components"]["schemas"]["Ballot"]["properties"]["status"]["enum"]
