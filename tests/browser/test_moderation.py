"""Reporting a poll, the operator signing in to moderate, and hiding a poll while someone
watches its results: their live socket closes and the page says the operator removed it."""

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from aiohttpdemo_polls.store import schema

from .conftest import PHONE, save_screenshot, serious_accessibility_violations


def reports_of(sync_engine, question_id: int) -> list[tuple[str, str]]:
    with sync_engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(schema.report.c.reason, schema.report.c.text).where(
                    schema.report.c.question_id == question_id
                )
            )
        ]


def test_anyone_reports_a_poll_from_its_results_page(tab, make_question, sync_engine):
    question = make_question("Cheap pills, anyone?", choices=("Yes", "No"))
    page = tab.page
    page.goto(f"/poll/{question['id']}/results")
    page.get_by_role("link", name="Report this poll").click()
    expect(page.get_by_role("heading", name="Report this poll")).to_be_visible()
    page.get_by_label("Spam or advertising").check()
    page.get_by_label(re.compile(r"^More about it")).fill("Adverts for pills,\nnot a poll.")
    save_screenshot(page, "report-form")
    page.get_by_role("button", name="Send the report").click()
    expect(page).to_have_url(re.compile(rf"/poll/{question['id']}/report/sent$"))
    expect(page.get_by_role("status")).to_contain_text("Your report was sent")
    assert reports_of(sync_engine, question["id"]) == [("spam", "Adverts for pills,\nnot a poll.")]
    page.get_by_role("link", name="Back to the poll").click()
    expect(page.get_by_role("heading", name="Cheap pills, anyone?")).to_be_visible()


def test_the_report_form_works_with_javascript_off(open_tab, make_question, sync_engine):
    page = open_tab(java_script_enabled=False).page
    question = make_question("Presenter poll?", choices=("A", "B"))
    page.goto(f"/poll/{question['id']}/present")
    page.get_by_role("link", name="Report this poll").click()
    page.get_by_label("Something else").check()
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert reports_of(sync_engine, question["id"]) == [("other", "")]


def test_the_operator_signs_in_sees_reports_hides_a_poll_and_signs_out(
    open_tab, make_question, sync_engine, admin_password, live_server
):
    question = make_question("Buy followers here?", choices=("Yes", "No"))
    with sync_engine.begin() as conn:
        conn.execute(schema.report.insert().values(question_id=question["id"], reason="spam", text="Ads."))
    operator_tab = open_tab(viewport={"width": 1024, "height": 768})
    operator = operator_tab.page
    operator.goto("/admin")
    operator_tab.expect_error_status(live_server + "/admin/sign-in", 403)
    operator.get_by_label("Operator password").fill("not it at all")
    operator.get_by_role("button", name="Sign in").click()
    expect(operator.locator("#password-error")).to_have_text("That password is not right.")
    operator.get_by_label("Operator password").fill(admin_password)
    operator.get_by_role("button", name="Sign in").click()
    expect(operator.get_by_role("heading", name="Moderation")).to_be_visible()
    reported = operator.locator("section", has=operator.get_by_role("heading", name="Reported polls"))
    expect(reported).to_contain_text("Buy followers here?")
    expect(reported).to_contain_text("Spam or advertising")
    expect(reported).to_contain_text("Ads.")
    save_screenshot(operator, "admin-moderation")

    reported.get_by_label("Reason (kept in the audit log)").fill("Selling followers.")
    reported.get_by_role("button", name="Hide").click()
    expect(operator.get_by_role("status")).to_contain_text("The poll is hidden")
    hidden = operator.locator("section", has=operator.get_by_role("heading", name="Hidden polls"))
    expect(hidden).to_contain_text("Buy followers here?")

    operator.get_by_role("link", name="Audit log").click()
    expect(operator.locator("table.audit-log")).to_contain_text("Selling followers.")
    expect(operator.locator("table.audit-log")).to_contain_text("Failed sign-in")

    operator.get_by_role("link", name="Moderation", exact=True).click()
    operator.get_by_role("button", name="Sign out").click()
    expect(operator.get_by_label("Operator password")).to_be_visible()
    with sync_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.admin_session)).scalar_one() == 0


def test_hiding_a_poll_closes_the_live_socket_of_its_open_results_page(
    open_tab, make_question, sync_engine, admin_password, live_server
):
    question = make_question("Watched while hidden?", choices=("Yes", "No"))
    watcher_tab = open_tab(viewport={"width": 1024, "height": 768})
    watcher = watcher_tab.page
    results = f"/poll/{question['id']}/results"
    with watcher.expect_websocket() as opened:
        watcher.goto(results)
    socket = opened.value
    expect(watcher.locator(".live-status")).to_have_attribute("data-state", "live")

    operator = open_tab(viewport={"width": 1024, "height": 768}).page
    operator.goto("/admin")
    operator.get_by_label("Operator password").fill(admin_password)
    operator.get_by_role("button", name="Sign in").click()
    operator.get_by_label("Find a poll by the words of its question").fill("watched hidden")
    operator.get_by_role("button", name="Search").click()
    found = operator.locator("section", has=operator.get_by_role("heading", name=re.compile("^Polls with")))
    found.get_by_label("Reason (kept in the audit log)").fill("Testing the socket.")
    found.get_by_role("button", name="Hide").click()

    # The watcher's page is told, and its socket is closed by the server.
    expect(watcher.locator(".live-status")).to_have_attribute("data-state", "deleted")
    expect(watcher.locator(".live-status")).to_have_text("The site's operator removed this poll.")
    if not socket.is_closed():
        socket.wait_for_event("close", timeout=5_000)
    assert socket.is_closed()
    save_screenshot(watcher, "results-removed-by-operator")
    watcher_tab.expect_error_status(live_server + results, 410)
    assert watcher.reload().status == 410
    expect(watcher.get_by_text("The site's operator removed this poll.")).to_be_visible()


def test_the_admin_pages_have_no_serious_accessibility_violation(
    axe_tab, make_question, sync_engine, admin_password
):
    question = make_question("Reported and searched?", choices=("Yes", "No"))
    with sync_engine.begin() as conn:
        conn.execute(schema.report.insert().values(question_id=question["id"], reason="other", text="Hm."))
    page = axe_tab.page
    page.goto("/admin")
    violations = {"sign-in": serious_accessibility_violations(page)}
    page.get_by_label("Operator password").fill(admin_password)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin?q=searched")
    violations["moderation"] = serious_accessibility_violations(page)
    page.goto("/admin/log")
    violations["audit-log"] = serious_accessibility_violations(page)
    assert {name: found for name, found in violations.items() if found} == {}
    page.set_viewport_size(PHONE)  # and on a phone, none scrolls sideways
    for path in ("/admin?q=searched", "/admin/log"):
        page.goto(path)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], path
