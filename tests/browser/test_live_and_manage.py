"""Two people at once: live results moving without a reload, and a maker closing a poll."""

import re

from playwright.sync_api import expect

from .conftest import save_screenshot
from .test_voting import result_row

MANAGE = re.compile(r"/poll/(\d+)/manage/[A-Za-z0-9_-]+$")


def test_a_vote_in_one_page_moves_the_bar_in_another_without_reload(open_tab, make_question, add_votes):
    question = make_question("Cats or dogs?", choices=("Cats", "Dogs", "Neither"))
    add_votes(question["id"], dict(zip(question["choices"], [1, 1, 0], strict=True)))
    watching = open_tab().page
    voting = open_tab().page

    watching.goto(f"/poll/{question['id']}/results")
    expect(watching.locator(".live-status")).to_have_attribute("data-state", "live")
    watching.evaluate("() => { window.sameDocument = true; }")
    neither = result_row(watching, "Neither")
    expect(neither.locator(".bar .fill")).to_have_attribute("width", "0.0")

    voting.goto(f"/poll/{question['id']}")
    voting.get_by_label("Neither").check()
    voting.get_by_role("button", name="Vote").click()
    expect(voting).to_have_url(re.compile(r"/results$"))

    # The watcher's page moves by itself: numbers, percentages and the bar.
    expect(neither.locator(".votes")).to_have_text("1")
    expect(neither.locator(".percent")).to_have_text("33.3%")
    expect(watching.locator(".total-votes")).to_have_text("3")
    expect(result_row(watching, "Cats").locator(".percent")).to_have_text("33.3%")
    expect(neither.locator(".bar .fill")).to_have_attribute("width", "33.3")
    assert watching.evaluate("() => window.sameDocument === true"), "the page was reloaded"
    save_screenshot(watching, "live-results-after-a-vote")


def test_make_a_three_choice_poll_vote_then_close_it_from_the_manage_page(open_tab, votes_of):
    maker = open_tab().page
    maker.goto("/poll/new")
    maker.get_by_label("Question").fill("Where to, for the offsite?")
    for number, text in enumerate(["Mountains", "Seaside", "City"], start=1):
        maker.get_by_label(f"Choice {number}", exact=True).fill(text)
    maker.get_by_role("button", name="Create poll", exact=True).click()
    expect(maker).to_have_url(MANAGE)
    question_id = int(MANAGE.search(maker.url)[1])
    public = maker.get_by_label("Public link: share it with voters").input_value()

    voter_tab = open_tab()
    voter = voter_tab.page
    voter.goto(public)
    voter.get_by_label("Seaside").check()
    voter.get_by_role("button", name="Vote").click()
    expect(result_row(voter, "Seaside").locator(".votes")).to_have_text("1")
    assert sorted(votes_of(question_id).values()) == [0, 0, 1]

    maker.reload()
    maker.get_by_role("button", name="Close voting now").click()
    expect(maker.get_by_text("Your poll is closed")).to_be_visible()
    save_screenshot(maker, "manage-closed")

    # The voter's page says voting closed; a vote sent anyway is refused (409) and not counted.
    voter.goto(public)
    expect(voter.get_by_text(re.compile(r"^Voting closed"))).to_be_visible()
    expect(voter.get_by_role("button", name="Vote")).to_have_count(0)
    voter_tab.expect_error_status(f"{public}/vote", 409)
    status = voter.evaluate(
        """async (url) => {
            const answer = await fetch(url, {method: "POST", body: new URLSearchParams({choice: "1"})});
            return answer.status;
        }""",
        f"{public}/vote",
    )
    assert status == 409
    assert sorted(votes_of(question_id).values()) == [0, 0, 1]
