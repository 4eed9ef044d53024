"""Making a poll in the browser: the form, every validation rule, and publishing."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from aiohttpdemo_polls.maker import form as poll_form
from aiohttpdemo_polls.store import schema


def fields(page: str, name: str) -> list[str]:
    """The values of the text inputs called `name` on a page, unescaped."""
    pattern = rf'<input type="[a-z-]+" id="[^"]*" name="{name}" value="([^"]*)"'
    return [html.unescape(v) for v in re.findall(pattern, page)]


def form_data(question="Where shall we eat?", choices=("Pizza", "Sushi"), **extra) -> list[tuple[str, str]]:
    return [("question_text", question), *(("choice", c) for c in choices), *extra.items()]


def polls_in(sync_engine) -> list:
    with sync_engine.connect() as conn:
        return conn.execute(sa.select(schema.question)).all()


def future(hours: float = 24) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


async def test_form_has_every_field_and_five_choice_fields(client):
    response = await client.get("/poll/new")
    assert response.status == 200
    page = await response.text()
    assert fields(page, "question_text") == [""]
    assert fields(page, "choice") == [""] * 5
    assert '<input type="checkbox" id="multiple" name="multiple" value="on">' in page
    assert "Voters may pick several choices" in page
    assert '<input type="datetime-local" id="closes_at" name="closes_at"' in page
    assert "The time is read in <span" in page and ">UTC</span>" in page
    assert 'name="add_choice"' in page and "Add another choice" in page
    assert '<script src="/static/new_poll.js" defer></script>' in page
    assert "<script>" not in page and " style=" not in page


async def test_add_choice_button_returns_the_form_as_typed_with_one_more_field(client, sync_engine):
    data = form_data("Best day?", ("Monday", "", "Friday"), multiple="on", closes_at="2031-05-01T09:30")
    response = await client.post("/poll/new", data=[*data, ("add_choice", "1")])
    assert response.status == 200
    page = await response.text()
    assert fields(page, "question_text") == ["Best day?"]
    assert fields(page, "choice") == ["Monday", "", "Friday", "", "", ""]
    assert 'name="multiple" value="on" checked' in page
    assert fields(page, "closes_at") == ["2031-05-01T09:30"]
    assert 'class="field-error"' not in page
    assert polls_in(sync_engine) == []


async def test_add_choice_stops_offering_more_at_twenty_fields(client):
    choices = [f"Option {n}" for n in range(19)]
    page = await (
        await client.post("/poll/new", data=[*form_data(choices=choices), ("add_choice", "1")])
    ).text()
    assert len(fields(page, "choice")) == 20
    assert 'name="add_choice"' not in page


async def test_new_poll_is_published_at_once_and_maker_sent_to_manage_page(client, sync_engine, stored_poll):
    data = form_data("  Lunch?  ", (" Pizza ", "", "Sushi", "  "))
    response = await client.post("/poll/new", data=data, allow_redirects=False)
    assert response.status == 303
    match = re.fullmatch(r"/poll/(\d+)/manage/([A-Za-z0-9_-]{43})", response.headers["Location"])
    assert match
    [poll] = polls_in(sync_engine)
    assert poll.id == int(match[1])
    assert poll.question_text == "Lunch?"
    assert poll.multiple is False and poll.closes_at is None and poll.closed_at is None
    assert stored_poll(poll.id).choices == ["Pizza", "Sushi"]
    index = await (await client.get("/")).text()
    assert f'href="/poll/{poll.id}">Lunch?</a>' in index
    page = await (await client.get(f"/poll/{poll.id}")).text()
    assert 'type="radio" name="choice"' in page


async def test_multiple_checkbox_makes_a_multiple_choice_poll(client, sync_engine):
    await client.post("/poll/new", data=form_data(multiple="on"), allow_redirects=False)
    [poll] = polls_in(sync_engine)
    assert poll.multiple is True
    page = await (await client.get(f"/poll/{poll.id}")).text()
    assert 'type="checkbox" name="choice"' in page


async def test_closes_at_without_offset_is_read_as_utc(client, sync_engine):
    await client.post("/poll/new", data=form_data(closes_at="2031-05-01T09:30"), allow_redirects=False)
    [poll] = polls_in(sync_engine)
    assert poll.closes_at == datetime(2031, 5, 1, 9, 30, tzinfo=UTC)


async def test_closes_at_is_read_at_the_browsers_offset(client, sync_engine):
    # The page's script sends the offset in force at that moment, in minutes east of UTC.
    data = form_data(closes_at="2031-05-01T09:30", tz_offset="120")
    await client.post("/poll/new", data=data, allow_redirects=False)
    [poll] = polls_in(sync_engine)
    assert poll.closes_at == datetime(2031, 5, 1, 7, 30, tzinfo=UTC)


TOO_LONG = "x" * 201


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (form_data(question=""), "question_text", poll_form.QUESTION_REQUIRED),
        (form_data(question="   "), "question_text", poll_form.QUESTION_REQUIRED),
        (form_data(question=TOO_LONG), "question_text", poll_form.question_too_long(201)),
        (form_data(question="What\x00?"), "question_text", "Remove the control character"),
        (form_data(question="What\x1b[31m?"), "question_text", "Remove the control character"),
        (form_data(question="What\tnow?"), "question_text", "Remove the control character"),
        (form_data(question="What\x85?"), "question_text", "Remove the control character"),
        ([("question_text", "Q?")], "choices", poll_form.TOO_FEW_CHOICES),
        (form_data(choices=("Only one", "", " ")), "choices", poll_form.TOO_FEW_CHOICES),
        (form_data(choices=[f"C{n}" for n in range(21)]), "choices", poll_form.TOO_MANY_CHOICES),
        (form_data(choices=("Fine", TOO_LONG)), "choice-1", poll_form.choice_too_long(201)),
        (form_data(choices=("Yes", "No", " yes ")), "choice-2", poll_form.DUPLICATE_CHOICE),
        (form_data(choices=("Ünïcode", "ÜNÏCODE")), "choice-1", poll_form.DUPLICATE_CHOICE),
        (form_data(choices=("Café", "CAFE\u0301")), "choice-1", poll_form.DUPLICATE_CHOICE),
        (form_data(choices=("Yes", "N\x00o")), "choice-1", "Remove the control character"),
        (form_data(closes_at="tomorrow"), "closes_at", poll_form.CLOSES_AT_MALFORMED),
        (form_data(closes_at="2031-13-01T10:00"), "closes_at", poll_form.CLOSES_AT_MALFORMED),
        (form_data(closes_at="2031-02-30T10:00"), "closes_at", poll_form.CLOSES_AT_MALFORMED),
        (form_data(closes_at="2031-01-01T24:00"), "closes_at", poll_form.CLOSES_AT_MALFORMED),
        (
            form_data(closes_at="9999-12-31T23:59", tz_offset="-600"),
            "closes_at",
            poll_form.CLOSES_AT_MALFORMED,
        ),
        (form_data(closes_at="2031-01-01T10:00\x00"), "closes_at", "Remove the control character"),
        (form_data(closes_at="2020-01-01T10:00"), "closes_at", poll_form.CLOSES_AT_PAST),
        (form_data(closes_at="0001-01-01T00:00", tz_offset="60"), "closes_at", poll_form.CLOSES_AT_MALFORMED),
        (form_data(closes_at=future(), tz_offset="east"), "closes_at", poll_form.BAD_OFFSET),
        (form_data(closes_at=future(), tz_offset="9999"), "closes_at", poll_form.BAD_OFFSET),
    ],
)
async def test_each_rule_refuses_with_its_message_next_to_the_field(
    client, sync_engine, data, field, message
):
    response = await client.post("/poll/new", data=data)
    assert response.status == 400
    page = await response.text()
    assert f'<p class="field-error" id="{field}-error">{html.escape(message)}' in page
    assert page.count('class="field-error"') == 1
    assert polls_in(sync_engine) == []


async def test_closes_at_a_minute_ago_is_refused_as_past(client):
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    response = await client.post("/poll/new", data=form_data(closes_at=past))
    assert response.status == 400
    assert poll_form.CLOSES_AT_PAST in await response.text()


async def test_limits_count_after_trimming(client, sync_engine):
    exact = "q" * 200
    data = form_data(question=f"  {exact}  ", choices=(f" {'c' * 200} ", "Other"))
    response = await client.post("/poll/new", data=data, allow_redirects=False)
    assert response.status == 303
    [poll] = polls_in(sync_engine)
    assert poll.question_text == exact


async def test_twenty_choices_are_accepted(client, make_poll, votes_of):
    poll = await make_poll(choices=[f"Choice {n}" for n in range(20)])
    assert len(votes_of(poll["id"])) == 20


async def test_refused_form_keeps_everything_typed_with_a_message_per_field(client, sync_engine):
    data = [
        ("question_text", ""),
        ("choice", "Tea <b>&</b>"),
        ("choice", " tea <B>&</B> "),
        ("choice", ""),
        ("choice", "Coffee"),
        ("choice", "Water"),
        ("choice", "Juice"),
        ("multiple", "on"),
        ("closes_at", "2020-02-02T20:20"),
    ]
    response = await client.post("/poll/new", data=data)
    assert response.status == 400
    page = await response.text()
    assert fields(page, "question_text") == [""]
    assert fields(page, "choice") == ["Tea <b>&</b>", " tea <B>&</B> ", "", "Coffee", "Water", "Juice"]
    assert 'name="multiple" value="on" checked' in page
    assert fields(page, "closes_at") == ["2020-02-02T20:20"]
    assert "<b>&</b>" not in page  # shown as typed, escaped
    errors = dict(re.findall(r'<p class="field-error" id="([^"]+)-error">([^<]*)</p>', page))
    assert errors == {
        "question_text": poll_form.QUESTION_REQUIRED,
        "choice-1": poll_form.DUPLICATE_CHOICE,
        "closes_at": poll_form.CLOSES_AT_PAST,
    }
    assert (
        'id="question_text" name="question_text" value="" maxlength="200" required aria-invalid="true"'
        in page
    )
    assert polls_in(sync_engine) == []


async def test_control_characters_come_back_visible_not_raw(client):
    page = await (await client.post("/poll/new", data=form_data(question="Nul\x00here"))).text()
    assert "\x00" not in page
    assert fields(page, "question_text") == ["Nul\ufffdhere"]


async def test_file_upload_instead_of_text_is_a_form_message(client, sync_engine):
    import aiohttp

    data = aiohttp.FormData()
    data.add_field("question_text", b"binary", filename="q.txt")
    data.add_field("choice", "A")
    data.add_field("choice", "B")
    response = await client.post("/poll/new", data=data)
    assert response.status == 400
    assert poll_form.NOT_TEXT in await response.text()
    assert polls_in(sync_engine) == []


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=nope"]
)
@pytest.mark.parametrize("path", ["/poll/new", "/poll/1/vote"])
async def test_body_that_is_not_utf8_is_a_400_page(client, make_question, path, content_type):
    make_question()
    response = await client.post(
        path, data=b"question_text=\xff\xfe&choice=1", headers={"Content-Type": content_type}
    )
    assert response.status == 400
    assert "The form could not be read" in await response.text()


@given(
    question=st.text(max_size=250),
    choices=st.lists(st.text(max_size=210), max_size=24),
    closes_at=st.text(max_size=30),
    tz_offset=st.text(max_size=6),
)
def test_any_typed_input_is_either_a_clean_poll_or_messages(question, choices, closes_at, tz_offset):
    from multidict import MultiDict

    form = MultiDict(
        [
            ("question_text", question),
            *(("choice", c) for c in choices),
            ("closes_at", closes_at),
            ("tz_offset", tz_offset),
        ]
    )
    typed = poll_form.check_new_poll(form)
    if typed.valid:
        texts = [typed.question, *typed.choice_texts]
        assert all(0 < len(t) <= 200 and t == t.strip() for t in texts)
        assert not any(poll_form.has_control(t) for t in texts)
        assert 2 <= len(typed.choice_texts) <= 20
        assert len({poll_form.same_text_key(c) for c in typed.choice_texts}) == len(typed.choice_texts)
    else:
        assert not any(
            poll_form.has_control(t) for t in [typed.question_text, *typed.choices, typed.closes_at]
        )
