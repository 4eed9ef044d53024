"""What a person sees of hidden results and of changing a vote, in a real browser."""

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from playwright.sync_api import expect

from aiohttpdemo_polls.store import schema

from .conftest import save_screenshot
from .test_voting import result_row


def test_after_vote_results_show_no_numbers_until_this_browser_votes(tab, make_question, add_votes):
    question = make_question("Hidden until you vote?", choices=("Left", "Right"), results="after_vote")
    add_votes(question["id"], dict(zip(question["choices"], [2, 1], strict=True)))
    page = tab.page
    page.goto(f"/poll/{question['id']}/results")
    expect(page.get_by_text("Results will be shown after you vote.")).to_be_visible()
    expect(result_row(page, "Left")).to_be_visible()
    expect(page.locator(".votes, .percent, .bar, .total")).to_have_count(0)
    assert not re.search(r"\d", page.locator("ul.results").inner_text())
    expect(page.locator(".live-status")).to_have_attribute("data-state", "live")  # hidden frames: no reload
    save_screenshot(page, "results-hidden-until-vote")

    page.goto(f"/poll/{question['id']}")
    page.get_by_label("Right").check()
    page.get_by_role("button", name="Vote").click()
    expect(page).to_have_url(re.compile(r"/results$"))
    expect(result_row(page, "Right").locator(".votes")).to_have_text("2")
    expect(page.locator(".total-votes")).to_have_text("4")
    expect(page.get_by_text("Results will be shown after you vote.")).to_have_count(0)


def test_after_close_results_appear_live_the_moment_voting_closes(tab, make_question, add_votes, sync_engine):
    question = make_question("Hidden until closed?", choices=("Up", "Down"), results="after_close")
    add_votes(question["id"], dict(zip(question["choices"], [3, 1], strict=True)))
    page = tab.page
    page.goto(f"/poll/{question['id']}/results")
    expect(page.get_by_text("Results will be shown when voting closes.")).to_be_visible()
    expect(page.locator(".live-status")).to_have_attribute("data-state", "live")
    expect(page.locator(".votes")).to_have_count(0)

    with sync_engine.begin() as conn:  # the maker closes it (as close_poll does)
        conn.execute(
            sa.update(schema.question)
            .where(schema.question.c.id == question["id"])
            .values(closed_at=datetime.now(UTC))
        )
    # The live frame now carries counts: the page fetches itself anew and shows them.
    expect(result_row(page, "Up").locator(".votes")).to_have_text("3")
    expect(page.locator(".total-votes")).to_have_text("4")


def test_change_a_vote_from_the_poll_page(tab, make_question, votes_of):
    question = make_question("Change of heart?", choices=("Apples", "Pears"))
    apples, pears = question["choices"]
    page = tab.page
    page.goto(f"/poll/{question['id']}")
    page.get_by_label("Apples").check()
    page.get_by_role("button", name="Vote").click()
    expect(result_row(page, "Apples").locator(".votes")).to_have_text("1")

    page.goto(f"/poll/{question['id']}")
    expect(page.get_by_role("status")).to_contain_text("You voted for Apples.")
    expect(page.get_by_label("Apples")).to_be_checked()
    page.get_by_label("Pears").check()
    save_screenshot(page, "change-my-vote")
    page.get_by_role("button", name="Change my vote").click()

    expect(page).to_have_url(re.compile(r"/results\?changed=1$"))
    expect(page.get_by_role("status").filter(has_text="Your vote was changed.")).to_be_visible()
    expect(result_row(page, "Pears").locator(".votes")).to_have_text("1")
    expect(result_row(page, "Apples").locator(".votes")).to_have_text("0")
    expect(result_row(page, "Pears")).to_contain_text("(your vote)")
    assert votes_of(question["id"]) == {apples: 0, pears: 1}
