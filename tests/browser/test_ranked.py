"""Ranked polls in a real browser: ranking with the keyboard alone (JavaScript on: move-up
and move-down buttons, read out through a live region), ranking with JavaScript off (the
place selects), and the count's tables with JavaScript on (moving live) and off."""

import re

from playwright.sync_api import expect

from .conftest import save_screenshot
from .test_pictures import publish
from .test_voting import tab_to


def ranked(make_question, texts=("Ann", "Ben", "Cy")):
    return make_question("Who should chair the club?", choices=texts, kind="ranked")


def stored_ranking(sync_engine, question_id: int) -> list[list[int]]:
    with sync_engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT array_agg(choice_id ORDER BY rank) FROM vote WHERE question_id = %(q)s GROUP BY voter",
            {"q": question_id},
        ).all()
    return [list(row[0]) for row in rows]


def rank_without_script(page, places: dict[str, str]) -> None:
    for text, place in places.items():
        page.get_by_label(text).select_option(place)
    page.get_by_role("button", name="Vote").click()


def test_ranking_with_the_keyboard_alone(tab, make_question, sync_engine):
    poll = ranked(make_question)
    ann, _, cy = poll["choices"]
    page = tab.page
    page.goto(f"/poll/{poll['id']}")
    expect(page.locator("[data-rank-list]")).to_be_hidden()  # the selects give way to the lists
    status = page.get_by_role("status")

    tab_to(page, 'button[aria-label="Add to my ranking: Cy"]')
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Cy added at place 1st.")
    tab_to(page, 'button[aria-label="Add to my ranking: Ann"]')
    page.keyboard.press("Enter")
    expect(status).to_have_text("Ann added at place 2nd. Your ranking now: 1st: Cy, 2nd: Ann.")
    # The focus stays with Ann: back to her "Move up" button, then up she goes.
    for _ in range(3):
        if page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Move up: Ann":
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(status).to_have_text("Ann moved to place 1st. Your ranking now: 1st: Ann, 2nd: Cy.")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Move down: Ann"
    expect(page.locator("ol.ranking .choice-text")).to_have_text(["Ann", "Cy"])
    save_screenshot(page, "ranked-keyboard-form")
    tab_to(page, "button[type=submit]", presses=20)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/poll/{poll['id']}/results$"))
    expect(page.locator(".your-ranking")).to_have_text("Your ranking: Ann, Cy.")
    assert stored_ranking(sync_engine, poll["id"]) == [[ann, cy]]


def test_ranking_with_javascript_off_and_a_mistake_shown_back(open_tab, make_question, sync_engine):
    poll = ranked(make_question)
    ann, ben, _ = poll["choices"]
    tab = open_tab(java_script_enabled=False)
    page = tab.page
    page.goto(f"/poll/{poll['id']}")
    tab.expect_error_status(f"{page.url}/rank", 400)

    rank_without_script(page, {"Ann": "1st", "Ben": "1st"})
    expect(page.get_by_role("alert")).to_contain_text("Two choices share place 1")
    expect(page.get_by_label("Ann")).to_have_value("1")  # as sent
    assert stored_ranking(sync_engine, poll["id"]) == []

    rank_without_script(page, {"Ben": "2nd", "Cy": "not ranked"})
    expect(page).to_have_url(re.compile(rf"/poll/{poll['id']}/results$"))
    expect(page.locator("table.rounds")).to_be_visible()
    assert stored_ranking(sync_engine, poll["id"]) == [[ann, ben]]
    page.goto(f"/poll/{poll['id']}")  # the form shows the ranking, ready to change
    expect(page.get_by_label("Ben")).to_have_value("2")
    expect(page.get_by_role("button", name="Change my ranking")).to_be_visible()


def test_results_tables_without_javascript(open_tab, make_question):
    poll = ranked(make_question)
    voter = open_tab(java_script_enabled=False).page
    for places in ({"Ann": "1st", "Ben": "2nd"}, {"Cy": "1st", "Ben": "2nd"}, {"Ben": "1st"}):
        voter.context.clear_cookies()
        voter.goto(f"/poll/{poll['id']}")
        rank_without_script(voter, places)
    page = open_tab(java_script_enabled=False).page
    page.goto(f"/poll/{poll['id']}/results")
    rounds = page.get_by_role("table", name="Votes in each round")
    expect(rounds.get_by_role("columnheader")).to_have_text(["Choice", "Round 1", "Round 2"])
    expect(rounds.get_by_role("rowheader").first).to_contain_text("Ben")
    expect(
        page.get_by_role("table", name="Voters preferring the row's choice to the column's")
    ).to_be_visible()
    expect(page.locator(".beats-all")).to_have_text("Ben beats every other choice head to head.")
    expect(page.locator(".tie-rule")).to_contain_text(f"({poll['id']})")


def test_results_move_live_with_javascript_on(tab, open_tab, make_question):
    poll = ranked(make_question)
    page = tab.page
    page.goto(f"/poll/{poll['id']}/results")
    expect(page.locator(".live-status")).to_have_attribute("data-state", "live", timeout=20_000)
    expect(page.locator(".ranked-outcome")).to_contain_text("No ballots yet.")
    voter = open_tab(java_script_enabled=False).page
    voter.goto(f"/poll/{poll['id']}")
    rank_without_script(voter, {"Cy": "1st", "Ann": "2nd"})
    # No reload: the socket's frame says the count changed, and the tables are fetched again.
    expect(page.locator(".ranked-outcome")).to_contain_text("Winner: Cy", timeout=10_000)
    expect(page.get_by_role("table", name="Votes in each round")).to_be_visible()
    expect(page.locator(".live-status")).to_have_attribute("data-state", "live")


def test_readme_ranked_results_picture(open_tab, make_question):
    poll = make_question(
        "Where should the team retreat go?",
        choices=("Lakeside cabins", "Mountain lodge", "City hotel", "Seaside camp"),
        kind="ranked",
    )
    voter = open_tab(java_script_enabled=False).page
    ballots = (
        [{"Lakeside cabins": "1st", "Mountain lodge": "2nd"}] * 3
        + [{"Mountain lodge": "1st", "Lakeside cabins": "2nd"}] * 2
        + [{"City hotel": "1st", "Mountain lodge": "2nd"}] * 2
        + [{"Seaside camp": "1st", "City hotel": "2nd", "Mountain lodge": "3rd"}]
    )
    for places in ballots:
        voter.context.clear_cookies()
        voter.goto(f"/poll/{poll['id']}")
        rank_without_script(voter, places)
    tab = open_tab(viewport={"width": 900, "height": 700}, device_scale_factor=1, color_scheme="light")
    page = tab.page
    page.goto(f"/poll/{poll['id']}/results")
    expect(page.locator(".live-status")).to_have_attribute("data-state", "live", timeout=20_000)
    # The instant runoff elects the cabins; the lodge beats every other choice head to head.
    expect(page.locator(".ranked-outcome")).to_contain_text("Winner: Lakeside cabins")
    expect(page.locator(".differs")).to_contain_text("(Mountain lodge)")
    publish(save_screenshot(page, "readme-ranked"), "ranked.png")
