"""A date poll's results files: results.csv is `option,yes,if_need_be,no`, ballots.csv
`participant,option,answer` with names made formula-safe, and left out where only the maker
sees names; results.json says each option's date or times."""

import csv
import io


async def answer(browser, poll, name, *said):
    data = [("name", name), *((f"answer-{o}", a) for o, a in zip(poll["options"], said, strict=True))]
    response = await browser.post(f"/poll/{poll['id']}/answer", data=data, allow_redirects=False)
    assert response.status == 303


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_results_csv_has_yes_if_need_be_and_no_per_option(client, anonymous, make_date_poll):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-03-01", ""))
    await answer(client, poll, "Ada", "yes", "no")
    await answer(anonymous, poll, "Bo", "if_need_be", "no")
    text = await (await client.get(poll["manage"] + "/results.csv")).text()
    assert rows(text) == [
        ["option", "yes", "if_need_be", "no"],
        ["2030-01-15 10:00\u201311:00 (Europe/Berlin)", "1", "1", "0"],
        ["2030-03-01", "0", "0", "2"],
    ]


async def test_ballots_csv_has_a_row_per_answer_with_formula_safe_names(client, make_date_poll):
    poll = await make_date_poll()
    await answer(client, poll, "=HYPERLINK(1)", "yes", "if_need_be")
    text = await (await client.get(poll["manage"] + "/ballots.csv")).text()
    assert rows(text) == [
        ["participant", "option", "answer"],
        ["'=HYPERLINK(1)", "2030-03-01", "yes"],
        ["'=HYPERLINK(1)", "2030-03-02", "if_need_be"],
    ]


async def test_ballots_csv_leaves_names_out_when_only_the_maker_sees_them(client, anonymous, make_date_poll):
    poll = await make_date_poll(names_hidden="on")
    await answer(anonymous, poll, "Secret Sam", "yes", "no")
    text = await (await client.get(poll["manage"] + "/ballots.csv")).text()
    assert "Secret Sam" not in text
    assert rows(text)[1] == ["Participant 1", "2030-03-01", "yes"]


async def test_results_json_says_each_options_date_or_times(client, make_date_poll):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-03-01", ""))
    document = await (await client.get(poll["manage"] + "/results.json")).json(content_type=None)
    assert document["kind"] == "dates" and document["timezone"] == "Europe/Berlin"
    timed, day = document["choices"]
    assert timed["starts_at"] == "2030-01-15T09:00:00+00:00" and day["date"] == "2030-03-01"
