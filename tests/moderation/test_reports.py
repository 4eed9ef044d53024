"""Anyone can report a poll: the link on its pages, the form, what is stored, the limit per
client address, and the 400 that names a wrong field."""

import asyncio

import pytest
import sqlalchemy as sa
import stored
from markupsafe import escape

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.moderation import reports
from aiohttpdemo_polls.store import schema
from aiohttpdemo_polls.web.checks import CROSS_SITE

REPORT = {"reason": "spam", "text": "Adverts for pills."}


def stored_reports(sync_engine) -> list[tuple]:
    with sync_engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(
                    schema.report.c.question_id,
                    schema.report.c.reason,
                    schema.report.c.text,
                    schema.report.c.created_at > sa.func.now() - sa.text("interval '1 minute'"),
                ).order_by(schema.report.c.id)
            )
        ]


@pytest.fixture
def app_with(aiohttp_client, config):
    async def start(**changes):
        return await aiohttp_client(init_app(config={**config, **changes}))

    return start


@pytest.mark.parametrize("kind", ["choices", "ranked", "dates"])
@pytest.mark.parametrize("page", ["", "/results", "/present"])
async def test_every_poll_results_and_presenter_page_links_to_the_report_form(
    client, make_question, make_date_poll, page, kind
):
    question = await make_date_poll() if kind == "dates" else make_question(kind=kind)
    html = await (await client.get(f"/poll/{question['id']}{page}")).text()
    assert f'href="/poll/{question["id"]}/report"' in html and "Report this poll" in html


async def test_the_report_form_offers_the_four_reasons_and_a_text_of_1000_characters(client, make_question):
    question = make_question("Buy pills?")
    response = await client.get(f"/poll/{question['id']}/report")
    html = await response.text()
    assert response.status == 200 and "Buy pills?" in html
    for value in ("spam", "illegal", "harassment", "other"):
        assert f'value="{value}"' in html
    for label in ("Spam or advertising", "Illegal content", "Harassment or hate", "Something else"):
        assert label in html
    assert 'maxlength="1000"' in html and '<meta name="robots" content="noindex">' in html


async def test_a_report_is_stored_with_its_time_then_a_thank_you_page(client, make_question, sync_engine):
    question = make_question()
    response = await client.post(f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/poll/{question['id']}/report/sent"
    assert stored_reports(sync_engine) == [(question["id"], "spam", "Adverts for pills.", True)]
    thanks = await client.get(response.headers["Location"])
    assert thanks.status == 200
    assert "Your report was sent to the site" in await thanks.text()


async def test_the_text_is_optional_and_keeps_its_line_breaks(client, make_question, sync_engine):
    question = make_question()
    for data in ({"reason": "other"}, {"reason": "illegal", "text": "  Line one\r\nLine two  "}):
        response = await client.post(f"/poll/{question['id']}/report", data=data, allow_redirects=False)
        assert response.status == 303
    assert [row[1:3] for row in stored_reports(sync_engine)] == [
        ("other", ""),
        ("illegal", "Line one\nLine two"),
    ]


async def test_the_report_row_keeps_no_client_address(client, make_question, sync_engine):
    question = make_question()
    await client.post(f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False)
    assert [c.name for c in schema.report.columns] == ["id", "question_id", "reason", "text", "created_at"]
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(schema.report_filing.c.client)).scalars().all() == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"text": "No reason."}, "reason", reports.REASON_REQUIRED),
        ({"reason": "boring"}, "reason", reports.REASON_REQUIRED),
        (
            {"reason": "spam", "text": "x" * 1001},
            "text",
            "The text is too long: 1001 characters, at most 1000.",
        ),
        ({"reason": "spam", "text": "a\x00b"}, "text", reports.TEXT_CONTROL),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    client, make_question, sync_engine, data, field, message
):
    question = make_question()
    response = await client.post(f"/poll/{question['id']}/report", data=data)
    html = await response.text()
    assert response.status == 400
    assert f'id="{field}-error">{escape(message)}' in html
    assert stored.rows(sync_engine, schema.report) == 0


async def test_a_text_of_exactly_1000_characters_with_windows_line_breaks_is_taken(
    client, make_question, sync_engine
):
    question = make_question()
    text = ("x" * 99 + "\r\n") * 10  # 1,000 characters as a browser counts them, 1,010 as sent
    response = await client.post(f"/poll/{question['id']}/report", data={"reason": "other", "text": text})
    assert response.status == 200
    assert len(stored_reports(sync_engine)[0][2]) == 999  # trailing line break trimmed


async def test_unknown_or_unpublished_polls_cannot_be_reported(client, make_question, sync_engine):
    future = make_question("Not yet?", days=3)
    for question_id in (future["id"], 999_999):
        assert (await client.get(f"/poll/{question_id}/report")).status == 404
        assert (await client.post(f"/poll/{question_id}/report", data=REPORT)).status == 404
    assert stored.rows(sync_engine, schema.report) == 0


async def test_reports_past_the_hourly_limit_are_a_429_with_retry_after(app_with, make_question, sync_engine):
    client = await app_with(limits={"polls_per_hour": 20, "reports_per_hour": 2})
    question = make_question()
    for _ in range(2):
        response = await client.post(f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False)
        assert response.status == 303
    response = await client.post(f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False)
    assert response.status == 429 and reports.TOO_MANY in await response.text()
    assert 3590 <= int(response.headers["Retry-After"]) <= 3600
    assert stored.rows(sync_engine, schema.report) == stored.rows(sync_engine, schema.report_filing) == 2


async def test_racing_reports_of_one_address_never_pass_the_limit(
    app_with, make_question, sync_engine, new_browser
):
    client = await app_with(limits={"polls_per_hour": 20, "reports_per_hour": 3})
    question = make_question()

    async def report(browser):
        async with browser.post(
            f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False
        ) as answer:
            return answer.status

    statuses = await asyncio.gather(*(report(new_browser(client)) for _ in range(10)))
    assert sorted(statuses) == [303] * 3 + [429] * 7
    assert stored.rows(sync_engine, schema.report) == 3


async def test_counted_reports_older_than_an_hour_are_forgotten(app_with, make_question, sync_engine):
    client = await app_with(limits={"polls_per_hour": 20, "reports_per_hour": 1})
    question = make_question()
    await client.post(f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False)
    with sync_engine.begin() as conn:
        conn.execute(
            schema.report_filing.update().values(created_at=sa.func.now() - sa.text("interval '61 minutes'"))
        )
    response = await client.post(f"/poll/{question['id']}/report", data=REPORT, allow_redirects=False)
    assert response.status == 303
    assert stored.rows(sync_engine, schema.report_filing) == 1  # the old row went, the address with it


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
async def test_a_cross_site_report_is_refused(client, make_question, sync_engine, headers):
    question = make_question()
    response = await client.post(f"/poll/{question['id']}/report", data=REPORT, headers=headers)
    assert response.status == 403 and CROSS_SITE in await response.text()
    assert stored.rows(sync_engine, schema.report) == 0


async def test_deleting_a_poll_deletes_its_reports(client, make_poll, sync_engine):
    poll = await make_poll()
    await client.post(f"/poll/{poll['id']}/report", data=REPORT, allow_redirects=False)
    assert stored.rows(sync_engine, schema.report) == 1
    await client.post(poll["manage"], data={"action": "delete", "confirm": "yes"}, allow_redirects=False)
    assert stored.rows(sync_engine, schema.report) == 0
