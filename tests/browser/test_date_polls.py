"""A date poll in the real browser, with JavaScript on and off: the maker makes it (copying a
day's times to the next), a participant answers in the grid, the maker settles it, and both
download the calendar file, which reads back with the right UTC start. At 375 px the grid
scrolls inside itself, never the page; with JavaScript, times are in the browser's zone."""

import csv
import io
import re
from datetime import UTC, datetime

import icalendar
import pytest
from playwright.sync_api import expect

from .conftest import PHONE, save_screenshot
from .test_pictures import publish

MANAGE = re.compile(r"/poll/(\d+)/manage/[A-Za-z0-9_-]+(\?.*)?$")


def make_date_poll(page) -> str:
    """Make "Team dinner" on the new-poll page: Jan 15 and 16 at 10:00 and 18:00 (Berlin), and
    Mar 1 all day. Returns the manage page's address."""
    page.goto("/poll/new")
    page.get_by_role("link", name="Find a date").click()
    page.get_by_label("What is it for?").fill("Team dinner")
    page.get_by_label("Time zone of the start times").select_option("Europe/Berlin")
    page.get_by_label("How long, in minutes").fill("90")
    page.get_by_label("Day 1", exact=True).fill("2030-01-15")
    page.get_by_label("Start times on day 1", exact=True).fill("10:00, 18:00")
    page.get_by_role("button", name="Copy the last day's times to the next day").click()
    expect(page.get_by_label("Day 2", exact=True)).to_have_value("2030-01-16")
    expect(page.get_by_label("Start times on day 2", exact=True)).to_have_value("10:00, 18:00")
    page.get_by_label("Day 3", exact=True).fill("2030-03-01")
    page.get_by_role("button", name="Create poll", exact=True).click()
    expect(page).to_have_url(MANAGE)
    return page.url


def answer(page, name: str, *said: str) -> None:
    page.get_by_label("Your name").fill(name)
    for column, word in enumerate(said):
        page.locator("td.choose fieldset").nth(column).get_by_label(word, exact=True).check()
    page.get_by_role("button", name="Save my answers").click()
    expect(page.get_by_role("status")).to_have_text("Your answers are saved.")


def read_calendar(download) -> icalendar.Event:
    return icalendar.Calendar.from_ical(download.path().read_bytes()).walk("VEVENT")[0]


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_date_poll_made_answered_settled_and_downloaded(open_tab, javascript):
    maker = open_tab(java_script_enabled=javascript, timezone_id="Europe/Berlin").page
    manage = make_date_poll(maker)
    public = maker.get_by_label("Public link: share it with voters").input_value()

    voter_tab = open_tab(java_script_enabled=javascript, timezone_id="America/New_York")
    voter = voter_tab.page
    voter.goto(public)
    if javascript:  # the browser's own zone, the poll's one click away
        expect(voter.locator(".zone-shown")).to_have_text("Times are shown in America/New_York.")
        expect(voter.locator("th.option .time").first).to_have_text("4:00\u202fAM \u2013 5:30\u202fAM")
        expect(
            voter.get_by_role("link", name="Show them in the poll's time zone (Europe/Berlin)")
        ).to_be_visible()
    else:
        expect(voter.locator(".zone-shown")).to_have_text("Times are shown in Europe/Berlin.")
        expect(voter.locator("th.option .time").first).to_have_text("10:00\u202fAM \u2013 11:30\u202fAM")
        voter.get_by_label("Show the times in").select_option("America/New_York")
        voter.get_by_role("button", name="Show", exact=True).click()
        expect(voter.locator(".zone-shown")).to_have_text("Times are shown in America/New_York.")
    expect(voter.locator("th.option .day").last).to_have_text("Fri, Mar 1, 2030")  # whole days stay
    answer(voter, "Ada", "Yes", "No", "If need be", "Yes", "No")
    expect(voter.locator("tfoot tr.yes td.total")).to_have_text(["1", "0", "0", "1", "0"])

    maker.goto(manage)
    expect(maker.locator("table.grid")).to_contain_text("Ada")
    maker.get_by_label("Final option").select_option(index=2)  # Jan 16, 10:00 in Berlin
    maker.get_by_role("button", name="Settle and close the poll").click()
    expect(maker.locator("p.notice")).to_contain_text("The date is set")
    with maker.expect_download() as caught:
        maker.get_by_role("link", name="Calendar file (.ics)").click()
    event = read_calendar(caught.value)
    assert event.decoded("dtstart") == datetime(2030, 1, 16, 9, 0, tzinfo=UTC)
    assert str(event["summary"]) == "Team dinner"
    with maker.expect_download() as caught:
        maker.get_by_role("link", name="Results as CSV").click()
    rows = list(csv.reader(io.StringIO(caught.value.path().read_text(encoding="utf-8"))))
    assert rows[0] == ["option", "yes", "if_need_be", "no"] and rows[4][1:] == ["1", "0", "0"]

    voter.goto(public)
    expect(voter.locator(".settled-note")).to_contain_text("The date is set:")
    # Said in the zone the grid is in: New York's with JavaScript, the poll's (Berlin) without.
    expect(voter.locator(".settled-when")).to_contain_text("4:00" if javascript else "10:00")
    expect(voter.locator(".settled-when")).to_contain_text(voter.locator("th.settled .time").inner_text())
    with voter.expect_download() as caught:
        voter.get_by_role("link", name="Add it to your calendar (.ics)").click()
    assert read_calendar(caught.value).decoded("dtstart") == datetime(2030, 1, 16, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_grid_scrolls_inside_itself_at_375_px(open_tab, javascript):
    maker = open_tab(java_script_enabled=javascript).page
    public = open_tab().page
    manage = make_date_poll(maker)
    public.goto(maker.get_by_label("Public link: share it with voters").input_value())
    phone = open_tab(java_script_enabled=javascript, viewport=PHONE).page
    phone.goto(public.url)
    answer(phone, "Bo", "Yes", "Yes", "If need be", "No", "Yes")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    grid = phone.locator(".grid-scroll")
    assert grid.evaluate("el => el.scrollWidth > el.clientWidth")  # the grid scrolls, not the page
    assert manage


def test_grid_updates_live_when_someone_answers(open_tab):
    maker = open_tab().page
    make_date_poll(maker)
    public = maker.get_by_label("Public link: share it with voters").input_value()
    watcher = open_tab().page
    watcher.goto(public)
    expect(watcher.locator(".live-status")).to_have_attribute("data-state", "live", timeout=20_000)
    other = open_tab().page
    other.goto(public)
    answer(other, "Cy", "If need be", "Yes", "Yes", "Yes", "No")
    expect(watcher.locator("table.grid tbody")).to_contain_text("Cy")
    expect(watcher.locator("tfoot tr.if_need_be td.total").first).to_have_text("1")


def test_readme_date_poll_grid_picture(open_tab):
    maker = open_tab(timezone_id="Europe/Berlin").page
    make_date_poll(maker)
    public = maker.get_by_label("Public link: share it with voters").input_value()
    for name, said in (
        ("Ada", ("Yes", "Yes", "No", "Yes", "If need be")),
        ("Bo", ("If need be", "Yes", "No", "Yes", "Yes")),
        ("Cy", ("No", "Yes", "Yes", "If need be", "No")),
    ):
        tab = open_tab(timezone_id="Europe/Berlin").page
        tab.goto(public)
        answer(tab, name, *said)
    page = open_tab(
        viewport={"width": 1100, "height": 640},
        device_scale_factor=1,
        color_scheme="light",
        timezone_id="Europe/Berlin",
    ).page
    page.goto(public)
    page.get_by_label("Your name").fill("Dee")
    expect(page.locator("th.option.best")).to_have_count(1)
    expect(page.locator("th.option.best")).to_contain_text("Best so far")
    publish(save_screenshot(page, "readme-date-poll", full_page=False), "date-poll.png")


@pytest.mark.parametrize(
    ("javascript", "zone"), [(True, "Asia/Tokyo"), (False, "UTC")], ids=["js-on", "js-off"]
)
def test_new_date_poll_takes_the_browsers_zone_by_default(open_tab, javascript, zone):
    page = open_tab(java_script_enabled=javascript, timezone_id="Asia/Tokyo").page
    page.goto("/poll/new?kind=dates")
    expect(page.get_by_label("Time zone of the start times")).to_have_value(zone)
