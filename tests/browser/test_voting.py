"""Voting in a real browser: keyboard only, the no-choice message, and JavaScript off."""

import re

from playwright.sync_api import Page, expect

from .conftest import save_screenshot


def tab_to(page: Page, selector: str, presses: int = 15) -> None:
    """Press Tab until the element matching `selector` has focus, as a keyboard user would."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus after {presses} presses of Tab")


def result_row(page: Page, choice_text: str):
    return page.locator(".result", has=page.locator(".choice-text", has_text=choice_text))


def test_vote_with_the_keyboard_alone(tab, make_question, votes_of):
    question = make_question("Tea or coffee?", choices=("Tea", "Coffee", "Water"))
    page = tab.page
    page.goto(f"/poll/{question['id']}")

    tab_to(page, "input[name=choice]")
    # Arrow keys move through a radio group and select as they go: Tea -> Coffee.
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Coffee")).to_be_checked()
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/poll/{question['id']}/results$"))
    coffee = result_row(page, "Coffee")
    expect(coffee.locator(".votes")).to_have_text("1")
    expect(coffee).to_contain_text("(your vote)")
    assert votes_of(question["id"]) == dict(zip(question["choices"], [0, 1, 0], strict=True))
    save_screenshot(page, "keyboard-vote-results")


def test_submitting_no_choice_shows_the_message(tab, make_question, votes_of):
    question = make_question("Pick one?", choices=("This", "That"))
    page = tab.page
    page.goto(f"/poll/{question['id']}")
    tab.expect_error_status(f"{page.url}/vote", 400)

    page.get_by_role("button", name="Vote").click()

    expect(page.get_by_role("alert")).to_have_text("You didn't select a choice.")
    # The form is shown again, ready for another try, and nothing was counted.
    expect(page.get_by_label("This")).to_be_visible()
    assert set(votes_of(question["id"]).values()) == {0}
    save_screenshot(page, "no-choice-message")


def test_voting_works_with_javascript_off(open_tab, make_question, votes_of):
    question = make_question("Works without scripts?", choices=("Yes", "No"), lock_votes=True)
    tab = open_tab(java_script_enabled=False)
    page = tab.page
    page.goto(f"/poll/{question['id']}")
    # The same form in a second tab of this browser, opened before the vote: going back may
    # fetch the page again (it varies by Cookie, which voting sets), and show the vote locked.
    stale = page.context.new_page()
    stale.goto(f"/poll/{question['id']}")

    page.get_by_label("Yes").check()
    page.get_by_role("button", name="Vote").click()

    expect(page).to_have_url(re.compile(rf"/poll/{question['id']}/results$"))
    yes = result_row(page, "Yes")
    expect(yes.locator(".votes")).to_have_text("1")
    expect(yes.locator(".percent")).to_have_text("100.0%")
    expect(page.locator(".total-votes")).to_have_text("1")
    assert votes_of(question["id"]) == dict(zip(question["choices"], [1, 0], strict=True))

    # A second vote from the same browser is not counted, and says so.
    stale.get_by_label("No").check()
    stale.get_by_role("button", name="Vote").click()
    expect(stale.get_by_role("status")).to_have_text("You already voted in this poll.")
    page.goto(f"/poll/{question['id']}")  # the poll now shows the vote, for good
    locked = "You voted for Yes. Votes in this poll cannot be changed."
    expect(page.locator("#your-vote")).to_have_text(locked)
    expect(page.get_by_label("No")).to_be_disabled()
    assert votes_of(question["id"]) == dict(zip(question["choices"], [1, 0], strict=True))
