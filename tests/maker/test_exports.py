"""The maker's results as files: results.csv, results.json and ballots.csv from the manage page."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from aiohttpdemo_polls.maker.exports import content_disposition
from aiohttpdemo_polls.store import exports as store_exports
from aiohttpdemo_polls.store import schema


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def download(client, path: str) -> tuple[object, str]:
    response = await client.get(path)
    return response, await response.text()


async def test_manage_page_links_each_file(client, make_poll):
    poll = await make_poll()
    page = await (await client.get(poll["manage"])).text()
    for name in ("results.csv", "results.json", "ballots.csv"):
        assert f'href="{poll["manage"]}/{name}" download' in page


async def test_results_csv_has_a_row_per_choice_with_votes_and_percent(client, make_poll, vote, new_browser):
    poll = await make_poll("Lunch?", ("Pizza", "Sushi", "Salad"))
    choices = sorted((await stored_choice_ids(client, poll)).values())
    for choice_id in (choices[0], choices[0], choices[1]):
        assert (await vote(new_browser(client), poll["id"], choice_id)).status == 302
    response, body = await download(client, poll["manage"] + "/results.csv")
    assert response.status == 200
    assert response.content_type == "text/csv" and response.charset == "utf-8"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Content-Disposition"] == f'attachment; filename="lunch-{poll["id"]}-results.csv"'
    assert rows_of(body) == [
        ["choice", "votes", "percent"],
        ["Pizza", "2", "66.7"],
        ["Sushi", "1", "33.3"],
        ["Salad", "0", "0.0"],
    ]


async def stored_choice_ids(client, poll) -> dict[str, int]:
    """Choice text -> id, read through the API the test does not check here."""
    data = await (await client.get(f"/api/polls/{poll['id']}")).json()
    return {c["choice_text"]: c["id"] for c in data["choices"]}


async def test_cells_a_spreadsheet_would_run_are_made_inert(client, make_poll, sync_engine, vote):
    formulas = ['=HYPERLINK("http://x")', "+1+2", "-3", "@SUM(A1)", "Plain"]
    poll = await make_poll("Formulas?", formulas)
    with sync_engine.begin() as conn:  # tab and CR the form refuses; SQL can store them
        conn.execute(
            schema.choice.update()
            .where(schema.choice.c.question_id == poll["id"], schema.choice.c.choice_text == "Plain")
            .values(choice_text="\tTabbed")
        )
        conn.execute(schema.choice.insert().values(question_id=poll["id"], choice_text="\rReturn"))
    ids = await stored_choice_ids(client, poll)
    assert (await vote(client, poll["id"], ids["-3"])).status == 302
    _, results = await download(client, poll["manage"] + "/results.csv")
    texts = [row[0] for row in rows_of(results)[1:]]
    assert texts == ['\'=HYPERLINK("http://x")', "'+1+2", "'-3", "'@SUM(A1)", "'\tTabbed", "'\rReturn"]
    _, ballots = await download(client, poll["manage"] + "/ballots.csv")
    assert [row[2] for row in rows_of(ballots)[1:]] == ["'-3"]
    # JSON is not a spreadsheet: the texts stay exactly as stored there.
    _, document = await download(client, poll["manage"] + "/results.json")
    assert [c["choice"] for c in json.loads(document)["choices"]][:3] == formulas[:3]


async def test_results_json_has_question_dates_state_counts_and_total(client, make_poll, vote, new_browser):
    poll = await make_poll("Best editor?", ("Vim", "Emacs"), closes_at="2031-01-01T12:00")
    ids = await stored_choice_ids(client, poll)
    assert (await vote(new_browser(client), poll["id"], ids["Emacs"])).status == 302
    response, body = await download(client, poll["manage"] + "/results.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="best-editor-{poll["id"]}-results.json"'
    )
    assert response.headers["Cache-Control"] == "private, no-store"
    document = json.loads(body)
    assert document["question"] == "Best editor?"
    assert datetime.fromisoformat(document["closes_at"]) == datetime.fromisoformat("2031-01-01T12:00+00:00")
    assert datetime.fromisoformat(document["published_at"]).tzinfo is not None
    assert document["closed"] is False and document["closed_at"] is None
    assert document["choices"] == [
        {"id": ids["Vim"], "choice": "Vim", "votes": 0, "percent": 0.0},
        {"id": ids["Emacs"], "choice": "Emacs", "votes": 1, "percent": 100.0},
    ]
    assert document["total"] == 1

    await client.post(poll["manage"], data={"action": "close"}, allow_redirects=False)
    closed = json.loads((await download(client, poll["manage"] + "/results.json"))[1])
    assert closed["closed"] is True
    assert datetime.fromisoformat(closed["closed_at"]) <= datetime.now(UTC)


async def test_ballots_csv_lists_each_ballot_time_and_texts_without_voter_ids(
    client, make_poll, vote, new_browser, sync_engine
):
    poll = await make_poll("Toppings?", ("Cheese", "Olives", "Basil"), multiple="on")
    ids = await stored_choice_ids(client, poll)
    first, second = new_browser(client), new_browser(client)
    assert (await vote(first, poll["id"], ids["Cheese"], ids["Basil"])).status == 302
    assert (await vote(second, poll["id"], ids["Olives"])).status == 302
    response, body = await download(client, poll["manage"] + "/ballots.csv")
    assert response.status == 200 and response.content_type == "text/csv"
    rows = rows_of(body)
    assert rows[0] == ["ballot", "cast_at", "choice"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("1", "Cheese"), ("1", "Basil"), ("2", "Olives")]
    with sync_engine.connect() as conn:
        stored = conn.execute(
            sa.select(schema.ballot.c.voter, schema.ballot.c.cast_at).order_by(schema.ballot.c.cast_at)
        )
        ballots = stored.all()
    assert [datetime.fromisoformat(r[1]) for r in rows[1:]] == [
        ballots[0].cast_at,
        ballots[0].cast_at,
        ballots[1].cast_at,
    ]
    for voter, _ in ballots:
        assert voter not in body


def plan_nodes(node: dict) -> list[dict]:
    """A node of EXPLAIN's JSON and all nodes under it, subplans included."""
    return [node, *(n for child in node.get("Plans", []) for n in plan_nodes(child))]


def test_ballots_export_reads_each_ballot_once_even_when_statistics_are_stale(
    sync_engine, make_question, add_votes
):
    """A poll's ballots can outrun autovacuum's ANALYZE: the planner then expects a handful, and
    a join to the numbered ballots (the first ballots.csv) read every ballot once per vote."""
    older = make_question("Older?")
    add_votes(older["id"], {older["choices"][0]: 30})
    new = make_question("New?")
    cast = 2000
    with sync_engine.connect() as conn, conn.begin():  # rolled back: autovacuum never sees the rows
        conn.execute(sa.text("ANALYZE ballot, vote, choice"))  # statistics from before the new poll's ballots
        voters = [f"voter-{n}" for n in range(cast)]
        conn.execute(schema.ballot.insert(), [{"question_id": new["id"], "voter": v} for v in voters])
        conn.execute(
            schema.vote.insert(),
            [
                {"question_id": new["id"], "voter": v, "choice_id": new["choices"][n % 3]}
                for n, v in enumerate(voters)
            ],
        )
        query = store_exports.ballots_query(new["id"]).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}")).scalar_one()
    nodes = plan_nodes(plan[0]["Plan"])
    assert nodes[0]["Actual Rows"] == cast
    rows_read = [(n["Node Type"], n["Actual Rows"] * n["Actual Loops"]) for n in nodes]
    assert max(read for _, read in rows_read) <= cast, rows_read


@pytest.mark.parametrize("name", ["results.csv", "results.json", "ballots.csv"])
async def test_a_wrong_token_gets_the_manage_pages_own_404(client, make_poll, make_question, name):
    poll = await make_poll()
    wrong = f"/poll/{poll['id']}/manage/{'A' * 43}"
    expected = await client.get(wrong)
    response = await client.get(f"{wrong}/{name}")
    assert response.status == expected.status == 404
    assert await response.text() == await expected.text()
    made_with_sql = make_question("No token?")  # stores no token hash: no token opens it
    assert (await client.get(f"/poll/{made_with_sql['id']}/manage/{'A' * 43}/{name}")).status == 404


def test_file_names_are_a_safe_slug_with_the_question_as_written_for_non_ascii():
    assert content_disposition('Où "manger" ce soir ?', 7, "results.csv") == (
        'attachment; filename="ou-manger-ce-soir-7-results.csv"; '
        "filename*=UTF-8''o%C3%B9-manger-ce-soir-7-results.csv"
    )
    assert content_disposition("../../etc/passwd\r\nX: y", 3, "ballots.csv") == (
        'attachment; filename="etc-passwd-x-y-3-ballots.csv"'
    )
    assert content_disposition("投票", 9, "results.json") == (
        "attachment; filename=\"poll-9-results.json\"; filename*=UTF-8''%E6%8A%95%E7%A5%A8-9-results.json"
    )
