"""The presenter view in a real browser: its QR code scans, its bars move, full screen."""

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from .conftest import save_screenshot

PROJECTOR = {"width": 1280, "height": 720}
LIVE_WAIT = 20_000  # ms: a vote on a busy machine may take a while to reach every page


def scanned_codes(path) -> list[str]:
    """The texts of the QR codes a phone camera would read from this picture."""
    with Image.open(path) as picture:
        return [code.text for code in zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_qr_code_on_the_screen_scans_to_the_polls_public_link(open_tab, live_server, make_question, scheme):
    question = make_question("Which room for the workshop?", choices=("Red", "Blue"))
    tab = open_tab(viewport=PROJECTOR, color_scheme=scheme, device_scale_factor=1)
    tab.page.goto(f"/poll/{question['id']}/present")
    expect(tab.page.locator(".live-status")).to_have_attribute("data-state", "live", timeout=LIVE_WAIT)
    path = save_screenshot(tab.page, f"present-{scheme}", full_page=False)
    assert scanned_codes(path) == [f"{live_server}/poll/{question['id']}"]


def test_scanning_finds_no_code_where_there_is_none(tab, make_question):
    # The decoder is not just returning something: a results page has no QR code to read.
    question = make_question()
    tab.page.goto(f"/poll/{question['id']}/results")
    assert scanned_codes(save_screenshot(tab.page, "results-no-qr", full_page=False)) == []


def test_presenter_bars_move_when_someone_votes_on_another_page(open_tab, make_question):
    question = make_question("Coffee or tea?", choices=("Coffee", "Tea"))
    screen = open_tab(viewport=PROJECTOR).page
    screen.goto(f"/poll/{question['id']}/present")
    expect(screen.locator(".live-status")).to_have_attribute("data-state", "live", timeout=LIVE_WAIT)
    tea = screen.locator(f'li[data-choice="{question["choices"][1]}"]')
    expect(tea.locator(".fill")).to_have_attribute("width", "0.0")

    phone = open_tab(viewport={"width": 375, "height": 740}, is_mobile=True).page
    phone.goto(f"/poll/{question['id']}")
    phone.get_by_label("Tea").check()
    phone.get_by_role("button", name="Vote").click()
    expect(phone.locator(".total-votes")).to_have_text("1")

    expect(screen.locator(".total-votes")).to_have_text("1", timeout=LIVE_WAIT)
    expect(tea.locator(".votes")).to_have_text("1")
    expect(tea.locator(".percent")).to_have_text("100.0%")
    expect(tea.locator(".fill")).to_have_attribute("width", "100.0")
    # The bar is drawn across its track (the width transitions), not only relabelled.
    screen.wait_for_function(
        "(f) => f.getBoundingClientRect().width > 0.95 * f.ownerSVGElement.getBoundingClientRect().width",
        arg=tea.locator(".fill").element_handle(),
        timeout=LIVE_WAIT,
    )


def test_full_screen_button_is_there_only_where_javascript_runs(open_tab, make_question):
    question = make_question("Full screen?")
    path = f"/poll/{question['id']}/present"

    with_script = open_tab(viewport=PROJECTOR).page
    with_script.goto(path)
    button = with_script.get_by_role("button", name="Full screen")
    expect(button).to_be_visible()
    button.click()
    expect(with_script.get_by_role("button", name="Exit full screen")).to_be_visible()
    assert with_script.evaluate("() => document.fullscreenElement === document.documentElement")

    without_script = open_tab(viewport=PROJECTOR, java_script_enabled=False).page
    without_script.goto(path)
    expect(without_script.locator("button[data-fullscreen]")).to_be_hidden()
    expect(without_script.locator(".live-status")).to_have_count(0)
    refresh = without_script.get_by_role("link", name="Refresh")
    refresh.click()
    expect(without_script).to_have_url(f"{without_script.url.split('/poll/')[0]}{path}")
    expect(without_script.get_by_role("heading", name="Full screen?")).to_be_visible()


@pytest.mark.parametrize(
    "screen", [PROJECTOR, {"width": 1920, "height": 1080}, {"width": 1024, "height": 768}]
)
def test_presenter_view_of_four_choices_fits_the_screen_without_scrolling(open_tab, make_question, screen):
    question = make_question(
        "Which day suits the whole team for the offsite?", choices=("Monday", "Tuesday", "Thursday", "Friday")
    )
    page = open_tab(viewport=screen).page
    page.goto(f"/poll/{question['id']}/present")
    expect(page.locator(".live-status")).to_have_attribute("data-state", "live", timeout=LIVE_WAIT)
    size = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert size[0] <= screen["width"] and size[1] <= screen["height"], (size, screen)
    # Large type: the question is at least a twentieth of the screen's height.
    font_size = page.locator("h1").evaluate("(h) => parseFloat(getComputedStyle(h).fontSize)")
    assert font_size >= screen["height"] / 20
