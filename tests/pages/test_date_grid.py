"""A date poll's public pages: the grid (options as columns, participants as rows, totals, the
best options in words), answering, changing and removing one's row with JavaScript off, names
only the maker sees, the results settings, time zones (the reader's pick, the poll's own one
click away, whole days never shifting), settling and the calendar file, psql edits."""

import re
import time
from datetime import date, datetime

import icalendar
import pytest

EVENT = re.compile(r"/poll/\d+/event\.ics")


async def answer(browser, poll: dict, name: str | None, *said: str, **request):
    """Send the grid's form: a name and one answer per option (in order); the 303 or the page."""
    data = [] if name is None else [("name", name)]
    data += [(f"answer-{option}", a) for option, a in zip(poll["options"], said, strict=False)]
    request.setdefault("allow_redirects", False)
    response = await browser.post(f"/poll/{poll['id']}/answer", data=data, **request)
    await response.read()
    return response


def cells(page: str) -> list[str]:
    """The answers in the grid's body rows, in order, as their classes say."""
    return re.findall(r'<td class="answer (yes|if_need_be|no)">', page)


async def test_grid_shows_options_as_columns_participants_as_rows_and_totals(
    client, anonymous, make_date_poll
):
    poll = await make_date_poll(("2030-03-01", ""), ("2030-03-02", ""), ("2030-03-03", ""))
    assert (await answer(client, poll, "Ada", "yes", "if_need_be", "no")).status == 303
    assert (await answer(anonymous, poll, "Bo", "yes", "yes", "no")).status == 303
    page = await (await anonymous.get(f"/poll/{poll['id']}")).text()
    assert page.count('<th scope="col" class="option') == 3
    assert "Fri, Mar 1, 2030" in page and "All day" in page
    assert re.search(r'<th scope="row" class="who">Ada', page) and re.search(
        r'<th scope="row" class="who">Bo', page
    )
    assert cells(page) == ["yes", "if_need_be", "no", "yes", "yes", "no"]
    totals = re.findall(r'<td class="total" data-option="\d+">(\d+)</td>', page)
    assert totals == ["2", "1", "0", "0", "1", "0"]  # yes row, then if-need-be row


async def test_best_options_are_marked_in_words_most_yes_then_most_if_need_be(
    client, anonymous, make_date_poll
):
    poll = await make_date_poll(("2030-03-01", ""), ("2030-03-02", ""), ("2030-03-03", ""))
    await answer(client, poll, "Ada", "yes", "yes", "no")
    await answer(anonymous, poll, "Bo", "no", "if_need_be", "yes")
    page = await (await anonymous.get(f"/poll/{poll['id']}")).text()
    assert page.count("Best so far") == 1
    best = re.search(r'class="option best" data-option="(\d+)"', page)
    assert int(best[1]) == poll["options"][1]  # one yes, as each other, and one if need be more


async def test_answering_without_javascript_then_changing_and_removing_the_row(
    client, make_date_poll, vote_rows_match_counters
):
    poll = await make_date_poll()
    first = await answer(client, poll, "Ada", "yes", "no")
    assert first.status == 303 and first.headers["Location"] == f"/poll/{poll['id']}?done=saved"
    page = await (await client.get(first.headers["Location"])).text()
    assert "Your answers are saved." in page
    assert 'value="Ada"' in page and 'value="yes" checked' in page  # the row is the form now
    changed = await answer(client, poll, "Ada L.", "no", "if_need_be")
    assert changed.headers["Location"].endswith("?done=changed")
    page = await (await client.get(f"/poll/{poll['id']}")).text()
    assert 'value="Ada L."' in page
    assert vote_rows_match_counters()
    removed = await client.post(f"/poll/{poll['id']}/answer", data={"remove": "1"}, allow_redirects=False)
    assert removed.headers["Location"].endswith("?done=removed")
    page = await (await client.get(removed.headers["Location"])).text()
    assert "Your row was removed." in page and "Ada" not in page
    assert vote_rows_match_counters()


@pytest.mark.parametrize(
    ("name", "said", "field", "message"),
    [
        (None, ("yes", "no"), "name", "Write your name."),
        ("  ", ("yes", "no"), "name", "Write your name."),
        ("x" * 65, ("yes", "no"), "name", "Your name is too long: at most 64 characters."),
        ("Ada", ("yes",), "answer-2", "Answer this option: yes, if need be, or no."),
        ("Ada", ("yes", "maybe"), "answer-2", "Pick yes, if need be, or no."),
    ],
)
async def test_bad_answers_come_back_as_typed_with_the_field_named(
    client, make_date_poll, name, said, field, message
):
    poll = await make_date_poll()
    response = await answer(client, poll, name, *said)
    page = await response.text()
    assert response.status == 400
    assert f'id="{field}-error"' in page and message in page
    if said[0] == "yes":
        assert (
            f'id="answer-{poll["options"][0]}-yes" name="answer-{poll["options"][0]}" value="yes" checked'
            in page
        )


async def test_names_only_the_maker_sees_are_totals_for_everyone_else(client, anonymous, make_date_poll):
    poll = await make_date_poll(names_hidden="on")
    await answer(anonymous, poll, "Secret Sam", "yes", "no")
    public = await (await client.get(f"/poll/{poll['id']}")).text()
    assert "Secret Sam" not in public
    assert "maker sees the names; you see the totals" in public
    assert re.findall(r'<td class="total" data-option="\d+">(\d+)</td>', public)[:2] == ["1", "0"]
    own = await answer(client, poll, "Me", "no", "yes")
    mine = await (await client.get(own.headers["Location"])).text()
    assert "Secret Sam" not in mine and 'value="Me"' in mine  # my own row, not others'
    manage = await (await client.get(poll["manage"])).text()
    assert "Secret Sam" in manage and "Me" in manage


async def test_results_after_voting_show_rows_and_totals_only_to_who_answered(
    client, anonymous, make_date_poll
):
    poll = await make_date_poll(results="after_vote")
    await answer(anonymous, poll, "Bo", "yes", "yes")
    before = await (await client.get(f"/poll/{poll['id']}")).text()
    assert "Bo" not in before and 'class="total"' not in before
    assert "shown after you answer" in before
    await answer(client, poll, "Ada", "no", "yes")
    after = await (await client.get(f"/poll/{poll['id']}")).text()
    assert "Bo" in after and 'class="total"' in after


async def test_times_are_in_the_polls_zone_named_and_the_zone_switch_works_without_javascript(
    client, make_date_poll
):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-03-01", ""), timezone="Europe/Berlin")
    page = await (await client.get(f"/poll/{poll['id']}")).text()
    assert "10:00\u202fAM \u2013 11:00\u202fAM" in page
    assert "Times are shown in Europe/Berlin." in page
    assert '<form method="get" action="/poll/1" class="zone-switch">' in page.replace(str(poll["id"]), "1")
    elsewhere = await (await client.get(f"/poll/{poll['id']}?tz=America/New_York")).text()
    assert "4:00\u202fAM \u2013 5:00\u202fAM" in elsewhere
    assert "Times are shown in America/New_York." in elsewhere
    # The poll's own zone one click away, and the whole day the same day everywhere.
    assert f'href="/poll/{poll["id"]}?tz=Europe/Berlin">Show them in the poll' in elsewhere
    assert "Fri, Mar 1, 2030" in page and "Fri, Mar 1, 2030" in elsewhere
    far = await (await client.get(f"/poll/{poll['id']}?tz=Pacific/Kiritimati")).text()
    assert "Fri, Mar 1, 2030" in far and "Tue, Jan 15, 2030" in far  # 23:00 there


async def test_a_start_time_may_fall_on_another_day_in_the_readers_zone(client, make_date_poll):
    poll = await make_date_poll(("2030-01-15", "23:30"), ("2030-03-01", ""), timezone="Europe/Berlin")
    page = await (await client.get(f"/poll/{poll['id']}?tz=Asia/Tokyo")).text()
    assert "Wed, Jan 16, 2030" in page and "7:30\u202fAM" in page


async def test_dst_each_side_of_the_change_shows_the_same_local_time(client, make_date_poll):
    poll = await make_date_poll(("2030-03-30", "10:00"), ("2030-03-31", "10:00"), timezone="Europe/Berlin")
    page = await (await client.get(f"/poll/{poll['id']}")).text()
    # Each in its column's head and in the answer row's legend.
    assert page.count("10:00\u202fAM \u2013 11:00\u202fAM") == 2 * 2
    utc = await (await client.get(f"/poll/{poll['id']}?tz=UTC")).text()
    assert "9:00\u202fAM \u2013 10:00\u202fAM" in utc and "8:00\u202fAM \u2013 9:00\u202fAM" in utc


async def test_an_unknown_zone_asked_for_shows_the_polls_own(client, make_date_poll):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-03-01", ""))
    page = await (await client.get(f"/poll/{poll['id']}?tz=../../etc/passwd")).text()
    assert "Times are shown in Europe/Berlin." in page


async def test_calendar_file_is_a_404_until_settled(client, make_date_poll):
    poll = await make_date_poll()
    assert (await client.get(f"/poll/{poll['id']}/event.ics")).status == 404


async def test_settling_closes_the_poll_and_shows_the_date_to_everyone(
    client, anonymous, make_date_poll, stored_poll
):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-07-15", "10:00"), timezone="Europe/Berlin")
    await answer(anonymous, poll, "Bo", "yes", "if_need_be")
    settled = await client.post(
        poll["manage"], data={"action": "settle", "option": str(poll["options"][1])}, allow_redirects=False
    )
    assert settled.status == 303 and settled.headers["Location"].endswith("?done=settled")
    assert stored_poll(poll["id"]).question.closed
    page = await (await anonymous.get(f"/poll/{poll['id']}")).text()
    assert "The date is set:" in page and "Mon, Jul 15, 2030, 10:00\u202fAM \u2013 11:00\u202fAM" in page
    assert EVENT.search(page) and 'name="name"' not in page  # closed: no row to answer in
    late = await answer(anonymous, poll, "Late", "yes", "yes")
    assert late.status == 409


async def test_calendar_file_read_back_has_the_right_utc_start_on_each_side_of_dst(client, make_date_poll):
    for day, hour in (("2030-01-15", 9), ("2030-07-15", 8)):
        poll = await make_date_poll(
            (day, "10:00"), ("2030-12-24", ""), timezone="Europe/Berlin", duration="90"
        )
        await client.post(poll["manage"], data={"action": "settle", "option": str(poll["options"][0])})
        response = await client.get(f"/poll/{poll['id']}/event.ics")
        assert response.status == 200 and response.content_type == "text/calendar"
        event = icalendar.Calendar.from_ical(await response.read()).walk("VEVENT")[0]
        start = datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")
        assert event.decoded("dtstart") == start and event.decoded("dtstart").utcoffset().total_seconds() == 0
        assert (event.decoded("dtend") - start).total_seconds() == 90 * 60
        assert str(event["summary"]) == "When shall we meet?"
        assert str(event["url"]).endswith(f"/poll/{poll['id']}")
        assert str(event["uid"]) == f"poll-{poll['id']}@127.0.0.1"


async def test_calendar_file_of_a_whole_day_is_a_date_value(client, make_date_poll):
    poll = await make_date_poll(("2030-03-01", ""), ("2030-03-02", ""))
    await client.post(poll["manage"], data={"action": "settle", "option": str(poll["options"][0])})
    body = await (await client.get(f"/poll/{poll['id']}/event.ics")).read()
    assert b"DTSTART;VALUE=DATE:20300301" in body
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert event.decoded("dtstart") == date(2030, 3, 1) and event.decoded("dtend") == date(2030, 3, 2)


async def test_settling_on_something_that_is_not_an_option_is_a_400(client, make_date_poll, make_poll):
    poll = await make_date_poll()
    other = await make_poll()
    for option in ("", "abc", "99999999999", str(poll["options"][-1] + 50)):
        response = await client.post(poll["manage"], data={"action": "settle", "option": option})
        assert response.status == 400, option
    assert (await client.post(other["manage"], data={"action": "settle", "option": "1"})).status == 400


async def test_an_answer_changed_with_psql_shows_on_the_grid_within_a_second(
    client, anonymous, make_date_poll, run_sql, eventually
):
    poll = await make_date_poll()
    await answer(anonymous, poll, "Bo", "yes", "yes")
    assert cells(await (await client.get(f"/poll/{poll['id']}")).text()) == ["yes", "yes"]
    changed_at = run_sql(
        "UPDATE vote SET answer = 'no' WHERE choice_id = :option;"
        " UPDATE choice SET votes = votes - 1 WHERE id = :option",
        option=poll["options"][1],
    )

    async def shown() -> bool:
        return cells(await (await client.get(f"/poll/{poll['id']}")).text()) == ["yes", "no"]

    await eventually(shown, timeout=5)
    assert time.monotonic() - changed_at < 1.0


async def test_index_and_presenter_know_date_polls(client, anonymous, make_date_poll):
    poll = await make_date_poll()
    await answer(anonymous, poll, "Zed Quux", "yes", "if_need_be")
    index = await (await client.get("/")).text()
    assert "Find a date" in index
    present = await (await client.get(f"/poll/{poll['id']}/present")).text()
    assert re.findall(r'<td class="total" data-option="\d+">(\d+)</td>', present) == ["1", "0", "0", "1"]
    assert "1 person answered" in present and "Zed Quux" not in present
    await client.post(poll["manage"], data={"action": "settle", "option": str(poll["options"][0])})
    assert "Date set" in await (await client.get("/")).text()


async def test_results_page_of_a_date_poll_is_its_grid(client, anonymous, make_date_poll):
    poll = await make_date_poll()
    await answer(anonymous, poll, "Bo", "yes", "no")
    page = await (await client.get(f"/poll/{poll['id']}/results")).text()
    assert "Bo" in page and 'class="grid"' in page


async def test_a_plain_vote_on_a_date_poll_shows_its_grid_again(client, make_date_poll, vote):
    poll = await make_date_poll()
    response = await vote(client, poll["id"], poll["options"][0])
    assert response.status == 400
    assert 'class="grid"' in await response.text()


async def test_locked_answers_cannot_be_changed_or_removed(client, make_date_poll, vote_rows_match_counters):
    poll = await make_date_poll(lock_votes="on")
    assert (await answer(client, poll, "Ada", "yes", "no")).status == 303
    again = await answer(client, poll, "Ada", "no", "no")
    assert again.headers["Location"].endswith("?done=same")
    page = await (await client.get(f"/poll/{poll['id']}")).text()
    assert cells(page) == ["yes", "no"] and 'name="name"' not in page
    assert "Answers in this poll cannot be changed." in page
    removed = await client.post(f"/poll/{poll['id']}/answer", data={"remove": "1"}, allow_redirects=False)
    assert removed.status == 409
    assert vote_rows_match_counters()


async def test_a_closed_date_poll_takes_no_answers_and_reopening_unsettles_it(
    client, make_date_poll, stored_poll
):
    poll = await make_date_poll()
    await client.post(poll["manage"], data={"action": "settle", "option": str(poll["options"][0])})
    assert (await answer(client, poll, "Ada", "yes", "no")).status == 409
    await client.post(poll["manage"], data={"action": "reopen"})
    question = stored_poll(poll["id"]).question
    assert question.settled_choice_id is None and not question.closed
    assert (await client.get(f"/poll/{poll['id']}/event.ics")).status == 404
    assert (await answer(client, poll, "Ada", "yes", "no")).status == 303


async def test_date_poll_pages_are_written_in_each_language(client, make_date_poll):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-03-01", ""))
    expected = {
        "de": ("Di., 15. Jan. 2030", "10:00", "Wenn nötig"),
        "fr": ("mar. 15 janv. 2030", "10:00", "Si besoin"),
        "es": ("mar, 15 ene 2030", "10:00", "Si hace falta"),
    }
    for language, (day, clock, word) in expected.items():
        page = await (await client.get(f"/poll/{poll['id']}", headers={"Accept-Language": language})).text()
        assert day in page and clock in page and word in page, language


async def test_presenter_view_shows_the_polls_zone_whatever_the_address_asks(client, make_date_poll):
    poll = await make_date_poll(("2030-01-15", "10:00"), ("2030-03-01", ""))
    asked = await (await client.get(f"/poll/{poll['id']}/present?tz=Asia/Tokyo")).text()
    plain = await (await client.get(f"/poll/{poll['id']}/present")).text()
    for page in (asked, plain):
        assert "Times are shown in Europe/Berlin." in page and "10:00\u202fAM" in page
        assert 'class="zone-switch"' not in page


async def test_a_date_polls_options_cannot_be_edited_as_texts(client, make_date_poll, stored_poll):
    poll = await make_date_poll()
    data = [("action", "edit"), ("question_text", "Renamed?"), ("choice", "A"), ("choice", "B")]
    response = await client.post(poll["manage"], data=data, allow_redirects=False)
    assert response.status == 400
    assert stored_poll(poll["id"]).choices == ["2030-03-01", "2030-03-02"]
    assert "Edit the texts" not in await (await client.get(poll["manage"])).text()
