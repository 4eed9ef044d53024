"""A tour of every page type of the app, shared by the phone-width and accessibility checks.

When a new kind of page lands (a new form, a manage page...), add a stop here and both
checks cover it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttpdemo_polls.store import tokens

from .conftest import BrowserTab

# Long text without spaces is what breaks layouts on phones; the limit is 200 characters.
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 2
LONG_QUESTION = f"Which of these is the longest word anyone has typed into {LONG_WORD} a poll?"
LONG_CHOICE = "Supercalifragilisticexpialidocious" * 3
MANAGE_TOKEN = "t" * 43  # any token works for a poll whose hash matches it


@dataclass(frozen=True)
class Stop:
    """One page type: how to reach it and the status it answers with."""

    name: str
    path: str
    status: int = 200
    # Run after loading `path` to reach the page (e.g. submit a form); None to just load it.
    then: Callable[[BrowserTab], None] | None = None
    # The URL the `then` step lands on when it answers 4xx on purpose.
    then_url: str | None = None
    then_status: int | None = None


def _submit_empty_vote(tab: BrowserTab) -> None:
    tab.page.get_by_role("button", name="Vote").click()
    tab.page.get_by_role("alert").wait_for()


def _submit_new_poll_with_one_choice(tab: BrowserTab) -> None:
    tab.page.get_by_label("Question").fill("Only one choice?")
    tab.page.get_by_label("Choice 1").fill("Yes")
    tab.page.get_by_role("button", name="Create poll", exact=True).click()
    tab.page.get_by_role("alert").wait_for()


def _submit_new_date_poll_without_days(tab: BrowserTab) -> None:
    tab.page.get_by_label("What is it for?").fill("When?")
    tab.page.get_by_role("button", name="Create poll", exact=True).click()
    tab.page.get_by_role("alert").wait_for()


def _ask_to_delete(tab: BrowserTab) -> None:
    tab.page.get_by_role("button", name="Delete…").click()
    tab.page.get_by_role("heading", name="Delete this poll?").wait_for()


def _vote_for_coffee(tab: BrowserTab) -> None:
    """Vote, landing on the results with "Remove my vote" (a page read for one voter)."""
    tab.page.get_by_label("Coffee").check()
    tab.page.get_by_role("button", name="Vote").click()
    tab.page.get_by_role("button", name="Remove my vote").wait_for()


def _wrong_voter_code(tab: BrowserTab) -> None:
    tab.page.get_by_label("Yes").check()
    tab.page.get_by_label("Your voter code").fill("7K3QX-M9PDA")
    tab.page.get_by_role("button", name="Vote").click()
    tab.page.get_by_role("alert").wait_for()


def _make_voter_codes(tab: BrowserTab) -> None:
    tab.page.get_by_label("How many codes").fill("3")
    tab.page.get_by_role("button", name="Make codes").last.click()
    tab.page.get_by_role("heading", name="3 new voter codes").wait_for()


def _print_voter_codes(tab: BrowserTab) -> None:
    _make_voter_codes(tab)
    tab.page.get_by_role("link", name="Printable cards").click()
    tab.page.locator(".code-card").first.wait_for()


def make_tour(make_question: Callable[..., dict[str, Any]], add_votes: Callable[..., None]) -> list[Stop]:
    """Create the polls the tour needs and return its stops."""
    make_question("An older poll, still open?", days=-3, choices=("Yes", "No"))
    closed = make_question(
        "Which day suits the team lunch?",
        days=-2,
        choices=("Tuesday", "Thursday", "Friday"),
        closed_at=datetime.now(UTC) - timedelta(hours=1),
    )
    add_votes(closed["id"], dict(zip(closed["choices"], [2, 5, 1], strict=True)))
    long = make_question(LONG_QUESTION, choices=(LONG_CHOICE, "Short", "Also short"))
    add_votes(long["id"], dict(zip(long["choices"], [3, 1, 0], strict=True)))
    multiple = make_question(
        "Which toppings on the pizza?", days=-0.5, choices=("Cheese", "Olives", "Basil"), multiple=True
    )
    token_hash = tokens.hash_token(MANAGE_TOKEN)
    managed = make_question(LONG_QUESTION, days=-0.1, choices=(LONG_CHOICE, "Short"), token_hash=token_hash)
    add_votes(managed["id"], dict(zip(managed["choices"], [1, 2], strict=True)))
    unvoted = make_question(
        "Not voted on yet?", days=-0.05, choices=(LONG_CHOICE, "No"), token_hash=token_hash
    )
    dates = make_question(
        "When shall we meet for the team dinner?",
        days=-0.01,
        choices=("2030-03-01", "2030-03-02", "2030-03-03", "2030-03-04", "2030-03-05"),
        kind="dates",
        timezone="Europe/Berlin",
        token_hash=token_hash,
    )
    add_votes(dates["id"], dict(zip(dates["choices"], [2, 1, 0, 3, 1], strict=True)))
    ranked = make_question(
        "Which talk first?",
        days=-0.02,
        choices=(LONG_CHOICE, "Databases", "Accessibility"),
        kind="ranked",
        token_hash=token_hash,
    )
    add_votes(ranked["id"], dict(zip(ranked["choices"], [3, 2, 2], strict=True)))  # first places only
    removable = make_question("Coffee or tea?", days=-0.01, choices=("Coffee", "Tea"))
    ranked_poll = f"/poll/{ranked['id']}"
    removed = make_question("Hidden by the operator?", days=-0.02, hidden_at=datetime.now(UTC))
    coded = make_question(
        LONG_QUESTION, days=-0.01, choices=("Yes", "No"), token_hash=token_hash, requires_code=True
    )
    poll = f"/poll/{long['id']}"
    coded_manage = f"/poll/{coded['id']}/manage/{MANAGE_TOKEN}"
    return [
        Stop("date-poll", f"/poll/{dates['id']}"),
        Stop("date-poll-manage", f"/poll/{dates['id']}/manage/{MANAGE_TOKEN}"),
        Stop("date-poll-present", f"/poll/{dates['id']}/present"),
        Stop("new-date-poll", "/poll/new?kind=dates"),
        Stop(
            "new-date-poll-errors",
            "/poll/new?kind=dates",
            then=_submit_new_date_poll_without_days,
            then_url="/poll/new",
            then_status=400,
        ),
        Stop("ranked-poll", ranked_poll),
        Stop(
            "ranked-poll-no-ranking",
            ranked_poll,
            then=_submit_empty_vote,
            then_url=f"{ranked_poll}/rank",
            then_status=400,
        ),
        Stop("ranked-results", f"{ranked_poll}/results"),
        Stop("ranked-present", f"{ranked_poll}/present"),
        Stop("ranked-manage", f"{ranked_poll}/manage/{MANAGE_TOKEN}"),
        Stop("index", "/"),
        Stop("poll", poll),
        Stop("poll-multiple-choice", f"/poll/{multiple['id']}"),
        Stop("poll-no-choice", poll, then=_submit_empty_vote, then_url=f"{poll}/vote", then_status=400),
        Stop("results", f"{poll}/results"),
        Stop("results-already-voted", f"{poll}/results?already=1"),
        Stop("present", f"{poll}/present"),
        Stop("present-closed", f"/poll/{closed['id']}/present"),
        Stop("closed-poll", f"/poll/{closed['id']}"),
        Stop("not-found", "/poll/99999", status=404),
        Stop("method-not-allowed", f"{poll}/vote", status=405),
        Stop("new-poll", "/poll/new"),
        Stop(
            "new-poll-errors",
            "/poll/new",
            then=_submit_new_poll_with_one_choice,
            then_url="/poll/new",
            then_status=400,
        ),
        Stop("manage", f"/poll/{managed['id']}/manage/{MANAGE_TOKEN}"),
        Stop("manage-before-votes", f"/poll/{unvoted['id']}/manage/{MANAGE_TOKEN}"),
        Stop("confirm-delete", f"/poll/{unvoted['id']}/manage/{MANAGE_TOKEN}", then=_ask_to_delete),
        Stop("poll-deleted", "/poll/deleted"),
        Stop("report", f"{poll}/report"),
        Stop("report-sent", f"{poll}/report/sent"),
        Stop("removed-by-operator", f"/poll/{removed['id']}", status=410),
        Stop("admin-no-password", "/admin"),
        Stop("results-voted-remove-my-vote", f"/poll/{removable['id']}", then=_vote_for_coffee),
        Stop("privacy", "/privacy"),
        Stop("poll-voter-code", f"/poll/{coded['id']}?code=7K3QX-M9PDA"),
        Stop(
            "poll-voter-code-wrong",
            f"/poll/{coded['id']}",
            then=_wrong_voter_code,
            then_url=f"/poll/{coded['id']}/vote",
            then_status=403,
        ),
        Stop("manage-voter-codes", coded_manage),
        Stop("voter-codes-made", coded_manage, then=_make_voter_codes),
        Stop("voter-codes-cards", coded_manage, then=_print_voter_codes),
    ]


def visit(tab: BrowserTab, base_url: str, stop: Stop) -> None:
    """Load the stop's page in `tab`, checking its status, and take its extra step."""
    if stop.status >= 400:
        tab.expect_error_status(base_url + stop.path, stop.status)
    response = tab.page.goto(stop.path)
    assert response is not None and response.status == stop.status, f"{stop.name}: {stop.path}"
    if stop.then is not None:
        if stop.then_url and stop.then_status:
            tab.expect_error_status(base_url + stop.then_url, stop.then_status)
        stop.then(tab)
        # The step waits for what the page says; its stylesheet may still be on its way.
        tab.page.wait_for_load_state("load")
