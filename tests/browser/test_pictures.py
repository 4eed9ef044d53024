"""README's pictures, taken from the real app in the real browser.

Every run saves them in screenshots/; `POLLS_README_PICTURES=1` also writes them to docs/,
which is how the committed pictures are made:

    POLLS_README_PICTURES=1 .venv/bin/python -m pytest tests/browser/test_pictures.py
"""

import os
import shutil

from playwright.sync_api import expect

from aiohttpdemo_polls import settings

from .conftest import save_screenshot

DOCS = settings.PROJECT_ROOT / "docs"


def publish(path, name: str) -> None:
    if os.environ.get("POLLS_README_PICTURES") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / name)


def test_readme_results_picture(open_tab, make_question, add_votes):
    question = make_question(
        "What's new?", choices=("Not much", "The sky", "Just hacking again", "Writing tests")
    )
    add_votes(question["id"], dict(zip(question["choices"][1:], [4, 9, 3], strict=True)))
    tab = open_tab(viewport={"width": 720, "height": 480}, device_scale_factor=1)
    page = tab.page
    page.goto(f"/poll/{question['id']}")
    page.get_by_label("Not much").check()
    page.get_by_role("button", name="Vote").click()

    expect(page.locator(".total-votes")).to_have_text("17")
    expect(page.locator(".result.mine")).to_contain_text("Not much")
    publish(save_screenshot(page, "readme-results"), "results.png")


def test_readme_presenter_view_picture(open_tab, make_question, add_votes):
    question = make_question(
        "Which talk should we hear after lunch?",
        choices=("Databases at scale", "Accessible web pages", "Testing in real browsers"),
    )
    add_votes(question["id"], dict(zip(question["choices"], [7, 12, 4], strict=True)))
    tab = open_tab(viewport={"width": 1280, "height": 720}, device_scale_factor=1, color_scheme="light")
    page = tab.page
    page.goto(f"/poll/{question['id']}/present")

    expect(page.locator(".live-status")).to_have_attribute("data-state", "live", timeout=20_000)
    expect(page.locator(".total-votes")).to_have_text("23")
    publish(save_screenshot(page, "readme-present", full_page=False), "present.png")
