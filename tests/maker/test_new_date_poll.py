"""Making a date poll with the new-poll form (no JavaScript needed): whole days, several start
times a day in an IANA zone with a duration, days added and copied by the form's buttons, and
every wrong field named. Daylight saving time: the same local time is another UTC time in
summer, and a time the clocks skip is refused."""

import re
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls.store import schema

MANAGE = re.compile(r"/poll/(\d+)/manage/[A-Za-z0-9_-]+")


def date_form(*days: tuple[str, str], **fields: str) -> list[tuple[str, str]]:
    data = [("kind", "dates"), ("question_text", fields.pop("question_text", "Team dinner"))]
    data += [
        ("timezone", fields.pop("timezone", "Europe/Berlin")),
        ("duration", fields.pop("duration", "90")),
    ]
    for day, times in days:
        data += [("day", day), ("times", times)]
    return data + list(fields.items())


def options(sync_engine, question_id: int) -> list[tuple]:
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.choice.c.day, schema.choice.c.starts_at, schema.choice.c.ends_at)
            .where(schema.choice.c.question_id == question_id)
            .order_by(schema.choice.c.id)
        ).all()
    return [tuple(r) for r in rows]


async def test_new_poll_page_offers_the_kinds_as_links_that_work_without_javascript(client):
    page = await (await client.get("/poll/new")).text()
    assert 'href="/poll/new?kind=choices" aria-current="page"' in page
    assert 'href="/poll/new?kind=dates"' in page and "Find a date" in page
    dates = await (await client.get("/poll/new?kind=dates")).text()
    assert 'name="kind" value="dates"' in dates
    assert "<option selected>UTC</option>" in dates  # without JavaScript; dates_new.js picks the browser's
    assert "<option>Europe/Berlin</option>" in dates


async def test_date_poll_made_with_days_and_times_is_stored_in_utc_with_its_zone(
    client, sync_engine, stored_poll
):
    data = date_form(("2030-01-15", "10:00, 18:00"), ("2030-03-01", ""), names_hidden="on", lock_votes="on")
    response = await client.post("/poll/new", data=data, allow_redirects=False)
    assert response.status == 303
    question_id = int(MANAGE.fullmatch(response.headers["Location"])[1])
    question = stored_poll(question_id).question
    assert (question.kind, question.timezone, question.names_hidden, question.lock_votes) == (
        "dates",
        "Europe/Berlin",
        True,
        True,
    )
    assert options(sync_engine, question_id) == [
        (None, datetime(2030, 1, 15, 9, 0, tzinfo=UTC), datetime(2030, 1, 15, 10, 30, tzinfo=UTC)),
        (None, datetime(2030, 1, 15, 17, 0, tzinfo=UTC), datetime(2030, 1, 15, 18, 30, tzinfo=UTC)),
        (date(2030, 3, 1), None, None),
    ]
    assert stored_poll(question_id).choices[0] == "2030-01-15 10:00\u201311:30 (Europe/Berlin)"


async def test_ten_in_berlin_is_nine_utc_in_winter_and_eight_utc_in_summer(client, sync_engine):
    # The last Sunday of March 2030 is the 31st: the day before and the day after the change.
    data = date_form(("2030-03-30", "10:00"), ("2030-03-31", "10:00"), duration="60")
    response = await client.post("/poll/new", data=data, allow_redirects=False)
    question_id = int(MANAGE.fullmatch(response.headers["Location"])[1])
    starts = [row[1] for row in options(sync_engine, question_id)]
    assert starts == [datetime(2030, 3, 30, 9, tzinfo=UTC), datetime(2030, 3, 31, 8, tzinfo=UTC)]


async def test_a_time_the_clocks_skip_is_refused_naming_its_field(client):
    data = date_form(("2030-03-31", "02:30"), ("2030-04-01", ""))
    response = await client.post("/poll/new", data=data)
    page = await response.text()
    assert response.status == 400
    assert 'id="times-0-error"' in page
    assert "02:30 does not exist on that day in Europe/Berlin" in page


async def test_an_hour_that_happens_twice_in_autumn_is_its_first_one(client, sync_engine):
    data = date_form(("2030-10-27", "02:30"), ("2030-10-28", ""), duration="30")
    response = await client.post("/poll/new", data=data, allow_redirects=False)
    question_id = int(MANAGE.fullmatch(response.headers["Location"])[1])
    assert options(sync_engine, question_id)[0][1] == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            date_form(("2030-01-15", "10:00"), ("2030-01-16", "10:00"), timezone="Mars/Olympus"),
            "timezone",
            "Pick a time zone",
        ),
        (
            date_form(("2030-01-15", "10:00"), ("2030-01-16", "10:00"), duration="0"),
            "duration",
            "from 1 to 1440",
        ),
        (
            date_form(("2030-01-15", "10:00"), ("2030-01-16", "10:00"), duration="1441"),
            "duration",
            "from 1 to 1440",
        ),
        (
            date_form(("2030-01-15", "10:00, 10:00"), ("2030-01-16", "")),
            "times-0",
            "This time is given twice.",
        ),
        (date_form(("2030-01-15", "10:00"), ("2030-01-15", "10:00")), "times-1", "This time is given twice."),
        (date_form(("2030-01-15", ""), ("2030-01-15", "")), "day-1", "This day is given twice."),
        (date_form(("2030-02-30", ""), ("2030-01-15", "")), "day-0", "Enter a date such as 2030-03-01."),
        (
            date_form(("2030-01-15", "25:00"), ("2030-01-16", "")),
            "times-0",
            "Enter times such as 10:00, 14:30.",
        ),
        (date_form(("", "10:00"), ("2030-01-16", "")), "day-0", "Enter the day for these times."),
        (date_form(("2030-01-15", "")), "options", "Give at least 2 options."),
    ],
)
async def test_bad_date_poll_fields_come_back_with_a_message_naming_the_field(client, data, field, message):
    response = await client.post("/poll/new", data=data)
    page = await response.text()
    assert response.status == 400
    assert f'id="{field}-error"' in page
    assert message in page
    assert 'value="dates"' in page  # the date form again, as typed


async def test_more_than_a_hundred_options_are_refused(client):
    days = [(f"2030-01-{d:02d}", ", ".join(f"{h:02d}:00" for h in range(8, 12))) for d in range(1, 27)]
    response = await client.post("/poll/new", data=date_form(*days))
    assert response.status == 400
    assert "Give at most 100 options." in await response.text()


async def test_add_day_and_copy_day_buttons_work_without_javascript(client):
    data = date_form(("2030-01-15", "10:00, 14:30"), ("", ""), ("", ""), copy_day="1")
    page = await (await client.post("/poll/new", data=data)).text()
    assert 'name="day" value="2030-01-16"' in page
    assert page.count('value="10:00, 14:30"') == 2
    data = date_form(("2030-01-15", ""), ("2030-01-16", ""), ("2030-01-17", ""), add_day="1")
    page = await (await client.post("/poll/new", data=data)).text()
    assert page.count('name="day"') == 4


async def test_date_poll_settings_are_checked_as_for_choice_polls(client):
    data = date_form(("2030-01-15", ""), ("2030-01-16", ""), question_text="", results="sometimes")
    page = await (await client.post("/poll/new", data=data)).text()
    assert 'id="question_text-error"' in page and 'id="results-error"' in page


async def test_unknown_kind_is_a_400(client):
    response = await client.post("/poll/new", data={"kind": "lottery", "question_text": "?"})
    assert response.status == 400
