"""Making and managing a poll in a real browser, with JavaScript on and off."""

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from playwright.sync_api import expect

from aiohttpdemo_polls.store import schema

from .conftest import save_screenshot

MANAGE = re.compile(r"/poll/(\d+)/manage/[A-Za-z0-9_-]{43}$")


def test_make_and_close_a_poll_with_javascript(open_tab, stored_poll):
    # Tokyo has no summer time, so its offset is +09:00 on any date.
    tab = open_tab(timezone_id="Asia/Tokyo", viewport={"width": 1024, "height": 900})
    page = tab.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/")
    page.get_by_role("link", name="New poll").click()
    expect(page.locator("#closes_at-hint")).to_contain_text("read in your time zone (Asia/Tokyo)")

    page.get_by_label("Question").fill("Where shall we eat?")
    for number, text in enumerate(["Pizza", "Sushi", "Salad", "Tacos", "Curry"], start=1):
        page.get_by_label(f"Choice {number}", exact=True).fill(text)
    page.evaluate("() => { window.sameDocument = true; }")
    page.get_by_role("button", name="Add another choice").click()
    # Added in place: the same document (no reload), texts still there, the new field focused.
    assert page.evaluate("() => window.sameDocument === true")
    expect(page.locator("input[name=choice]")).to_have_count(6)
    expect(page.get_by_label("Choice 6")).to_be_focused()
    expect(page.get_by_label("Choice 1", exact=True)).to_have_value("Pizza")
    page.get_by_label("Choice 6").fill("Ramen")
    page.get_by_label("Voters may pick several choices").check()
    page.get_by_label("Voting closes").fill("2031-05-01T09:30")
    save_screenshot(page, "new-poll-filled")
    page.get_by_label("Choice 6").press("Enter")  # Enter means "Create poll", not "Add"

    expect(page).to_have_url(MANAGE)
    question_id = int(MANAGE.search(page.url)[1])
    poll, texts = stored_poll(question_id)
    assert texts == ["Pizza", "Sushi", "Salad", "Tacos", "Curry", "Ramen"]
    assert poll.multiple is True
    assert poll.closes_at == datetime(2031, 5, 1, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo

    expect(page.get_by_text("Your poll is live")).to_be_visible()
    private = page.get_by_label("Private link: this page")
    expect(private).to_have_value(page.url)
    page.get_by_role("button", name="Copy").nth(1).click()
    expect(page.get_by_role("status")).to_have_text("Private link copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == page.url
    save_screenshot(page, "manage-page")

    page.get_by_role("button", name="Close voting now").click()
    expect(page.get_by_text("Your poll is closed")).to_be_visible()
    assert stored_poll(question_id).question.closed_at is not None


def test_make_a_poll_and_delete_it_without_javascript(open_tab, sync_engine, stored_poll):
    tab = open_tab(java_script_enabled=False, timezone_id="Asia/Tokyo")
    page = tab.page
    page.goto("/poll/new")
    expect(page.locator("#closes_at-hint")).to_contain_text("read in UTC.")
    page.get_by_label("Question").fill("Tea or coffee?")
    page.get_by_label("Choice 1", exact=True).fill("Tea")
    page.get_by_role("button", name="Add another choice").click()  # the form comes back
    expect(page.locator("input[name=choice]")).to_have_count(6)
    expect(page.get_by_label("Question")).to_have_value("Tea or coffee?")
    expect(page.get_by_label("Choice 1", exact=True)).to_have_value("Tea")
    page.get_by_label("Choice 6").fill("Coffee")
    page.get_by_label("Voting closes").fill("2031-05-01T09:30")
    page.get_by_role("button", name="Create poll", exact=True).click()

    expect(page).to_have_url(MANAGE)
    question_id = int(MANAGE.search(page.url)[1])
    poll, texts = stored_poll(question_id)
    assert texts == ["Tea", "Coffee"]
    assert poll.closes_at == datetime(2031, 5, 1, 9, 30, tzinfo=UTC)  # read as UTC, as the form said
    expect(page.get_by_role("button", name="Copy")).to_have_count(0)  # hidden without scripts
    expect(page.get_by_label("Public link: share it with voters")).to_have_value(
        re.compile(rf"^http://127\.0\.0\.1:\d+/poll/{question_id}$")
    )

    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete this poll?")).to_be_visible()
    page.get_by_role("button", name="Yes, delete the poll").click()
    expect(page.get_by_role("heading", name="The poll was deleted")).to_be_visible()
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.question)).scalar_one() == 0
