"""Making a ranked poll: /poll/new's "Voters rank the choices", with 3 to 20 choices."""

import sqlalchemy as sa

from aiohttpdemo_polls.store import schema


def kind_of(sync_engine, question_id: int) -> tuple[str, bool]:
    with sync_engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.question.c.kind, schema.question.c.multiple).where(
                schema.question.c.id == question_id
            )
        ).one()
    return row.kind, row.multiple


async def test_new_poll_form_offers_the_kinds_of_poll(client):
    page = await (await client.get("/poll/new")).text()
    assert 'name="kind" value="choices" checked' in page
    assert 'name="kind" value="ranked"' in page and "Voters rank the choices" in page


async def test_a_ranked_poll_is_made_from_the_form(client, make_poll, sync_engine):
    made = await make_poll("Who chairs?", ("Alice", "Bob", "Carol"), kind="ranked", multiple="on")
    assert kind_of(sync_engine, made["id"]) == ("ranked", False)  # a ranking is never "multiple"
    page = await (await client.get(f"/poll/{made['id']}")).text()
    assert 'class="vote ranked-vote"' in page


async def test_a_ranked_poll_needs_three_choices(client, sync_engine):
    data = [("question_text", "Who?"), ("choice", "Alice"), ("choice", "Bob"), ("kind", "ranked")]
    answer = await client.post("/poll/new", data=data)
    page = await answer.text()
    assert answer.status == 400
    assert "Give at least 3 choices to rank." in page
    assert 'value="ranked" checked' in page  # the form as typed


async def test_an_unknown_kind_is_refused_on_the_form(client):
    data = [("question_text", "Who?"), ("choice", "A"), ("choice", "B"), ("kind", "lottery")]
    answer = await client.post("/poll/new", data=data)
    assert answer.status == 400
    assert "Pick what voters do" in await answer.text()
