"""Languages in a real browser: the switch without JavaScript, and live results in German."""

import re

from playwright.sync_api import expect

from .conftest import save_screenshot
from .test_voting import result_row

NBSP = "\u00a0"


def test_switch_language_with_javascript_off_and_the_choice_is_kept(open_tab, make_question):
    question = make_question("Tea or coffee?", choices=("Tea", "Coffee"))
    page = open_tab(java_script_enabled=False, locale="fr-FR").page
    page.goto(f"/poll/{question['id']}")
    expect(page.locator("html")).to_have_attribute("lang", "fr")  # from Accept-Language
    expect(page.get_by_role("button", name="Voter")).to_be_visible()

    page.get_by_role("button", name="Deutsch").click()
    expect(page).to_have_url(re.compile(rf"/poll/{question['id']}$"))  # back on the same page
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("button", name="Abstimmen")).to_be_visible()
    expect(page.get_by_role("button", name="Deutsch")).to_have_attribute("aria-current", "true")

    page.get_by_role("link", name="Ergebnisse ansehen").click()  # the cookie keeps the choice
    expect(page.get_by_role("link", name="Zurück zur Abstimmung")).to_be_visible()
    save_screenshot(page, "results-in-german-without-javascript")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Back to voting")).to_be_visible()


def test_live_results_speak_german(open_tab, make_question, add_votes):
    question = make_question("Katzen oder Hunde?", choices=("Katzen", "Hunde"))
    add_votes(question["id"], {question["choices"][0]: 1})
    watching = open_tab(locale="de-DE").page
    watching.goto(f"/poll/{question['id']}/results")
    expect(watching.locator(".live-status")).to_have_attribute("data-state", "live")
    expect(watching.locator(".live-status")).to_have_text("Wird live aktualisiert")

    voting = open_tab(locale="de-DE").page
    voting.goto(f"/poll/{question['id']}")
    voting.get_by_label("Hunde").check()
    voting.get_by_role("button", name="Abstimmen").click()
    expect(voting).to_have_url(re.compile(r"/results$"))

    # Moved live, in German: the number, the word for one vote, the percentage.
    hunde = result_row(watching, "Hunde")
    expect(hunde.locator(".votes")).to_have_text("1")
    expect(hunde.locator(".count")).to_contain_text("1 Stimme ·")
    expect(hunde.locator(".percent")).to_have_text(re.compile(rf"^50,0[{NBSP}\u202f ]%$"))
    expect(watching.locator(".total")).to_have_text("Gesamt: 2 Stimmen")
    save_screenshot(watching, "live-results-in-german")
