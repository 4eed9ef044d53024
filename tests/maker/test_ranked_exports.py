"""A ranked poll's files and manage page: results.json with rounds and head to head,
results.csv with the rounds, ballots.csv with each ranking in order, formula-safe."""

import csv
import io
import json


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def ranked_poll_with_ballots(client, make_poll, new_browser, texts=("Ann", "Ben", "=Cy()")):
    poll = await make_poll("Who chairs?", texts, kind="ranked")
    read = await (await client.get(f"/api/polls/{poll['id']}")).json()
    ids = [c["id"] for c in read["choices"]]
    ann, ben, cy = ids
    for ranking in ([ann, ben], [ben, ann], [ben], [cy, ben], [ann]):
        data = {f"rank-{c}": str(ranking.index(c) + 1) if c in ranking else "" for c in ids}
        answer = await new_browser(client).post(f"/poll/{poll['id']}/rank", data=data, allow_redirects=False)
        assert answer.status == 302
    return poll, ids


async def test_results_json_holds_the_rounds_and_head_to_head(client, make_poll, new_browser):
    poll, (ann, ben, cy) = await ranked_poll_with_ballots(client, make_poll, new_browser)
    document = json.loads(await (await client.get(poll["manage"] + "/results.json")).text())
    assert document["kind"] == "ranked"
    count = document["count"]
    assert count["ballots"] == 5 and count["winner"] == ben
    assert count["rounds"][0]["eliminated"] == [cy]
    assert {"choice": ben, "over": ann, "voters": 3} in count["head_to_head"]


async def test_results_csv_gives_the_rounds(client, make_poll, new_browser):
    poll, _ = await ranked_poll_with_ballots(client, make_poll, new_browser)
    rows = rows_of(await (await client.get(poll["manage"] + "/results.csv")).text())
    assert rows == [
        ["choice", "round 1", "round 2"],
        ["Ben", "2", "3"],
        ["Ann", "2", "2"],
        ["'=Cy()", "1", ""],
        ["exhausted", "0", "0"],
        ["eliminated", "'=Cy()", ""],
    ]


async def test_ballots_csv_has_a_row_per_ballot_with_its_ranking_in_order(client, make_poll, new_browser):
    poll, _ = await ranked_poll_with_ballots(client, make_poll, new_browser)
    rows = rows_of(await (await client.get(poll["manage"] + "/ballots.csv")).text())
    assert rows[0] == ["ballot", "cast_at", "rank 1", "rank 2", "rank 3"]
    assert [row[2:] for row in rows[1:]] == [
        ["Ann", "Ben"],
        ["Ben", "Ann"],
        ["Ben"],
        ["'=Cy()", "Ben"],
        ["Ann"],
    ]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3", "4", "5"]


async def test_manage_page_shows_the_count_round_by_round(client, make_poll, new_browser):
    poll, _ = await ranked_poll_with_ballots(client, make_poll, new_browser)
    page = await (await client.get(poll["manage"])).text()
    assert '<table class="rounds">' in page and '<table class="head-to-head">' in page
    assert f"token={poll['token']}" in page  # its live socket is the maker's
