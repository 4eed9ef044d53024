"""The manage page tells the maker when retention deletes the poll, and to download the
results before then; nothing when polls are kept (retention.closed_days 0)."""

import html
import re
from datetime import UTC, datetime, timedelta

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web.i18n import format_day


def deletion_note(page: str) -> str | None:
    """The note's text, spaces collapsed, or None."""
    found = re.search(r'<p class="warning" id="deletion">(.*?)</p>', page, re.S)
    return None if found is None else html.unescape(" ".join(found[1].split()))


async def test_a_closed_poll_says_the_day_it_will_be_deleted(client, make_poll, sync_engine, run_sql):
    poll = await make_poll()
    run_sql("UPDATE question SET closed_at = '2026-03-10 23:30+00' WHERE id = :id", id=poll["id"])
    page = await (await client.get(poll["manage"])).text()
    assert deletion_note(page) == (
        "This poll will be deleted on September 6, 2026, 180 days after voting closed."
        " Download the results before then if you want to keep them."
    )
    german = await (await client.get(poll["manage"], headers={"Accept-Language": "de"})).text()
    assert "6. September 2026" in deletion_note(german)
    assert "180 Tage" in deletion_note(german)


async def test_an_open_poll_says_how_many_days_after_closing(client, make_poll):
    poll = await make_poll()
    page = await (await client.get(poll["manage"])).text()
    assert deletion_note(page) == (
        "This poll will be deleted 180 days after voting closes."
        " Download the results before then if you want to keep them."
    )


async def test_an_open_poll_with_a_closing_time_names_the_day_if_it_closes_as_planned(client, make_poll):
    closes = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    poll = await make_poll(closes_at=closes.strftime("%Y-%m-%dT%H:%M"))
    page = await (await client.get(poll["manage"])).text()
    day = format_day(closes.replace(second=0) + timedelta(days=180), "en")
    assert deletion_note(page).startswith(
        f"This poll will be deleted 180 days after voting closes: on {day} if it closes as planned."
    )


async def test_one_day_is_said_in_the_singular(aiohttp_client, config):
    client = await aiohttp_client(init_app(config={**config, "retention": {"closed_days": 1}}))
    made = await client.post(
        "/poll/new",
        data=[("question_text", "Tea?"), ("choice", "Yes"), ("choice", "No")],
        allow_redirects=False,
    )
    page = await (await client.get(made.headers["Location"])).text()
    assert deletion_note(page).startswith("This poll will be deleted 1 day after voting closes.")


async def test_nothing_is_said_when_polls_are_kept(aiohttp_client, config):
    client = await aiohttp_client(init_app(config={**config, "retention": {"closed_days": 0}}))
    made = await client.post(
        "/poll/new",
        data=[("question_text", "Tea?"), ("choice", "Yes"), ("choice", "No")],
        allow_redirects=False,
    )
    assert made.status == 303
    await client.post(made.headers["Location"], data={"action": "close"})
    page = await (await client.get(made.headers["Location"])).text()
    assert deletion_note(page) is None and "will be deleted" not in page
