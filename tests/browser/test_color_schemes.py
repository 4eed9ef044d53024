"""Light and dark: pages follow the system's colour scheme, and the result bars stay visible.

axe-core checks the contrast of text in both schemes (test_pages.py); it does not look at
graphics, so the bars' 3:1 (WCAG 1.4.11, non-text contrast) is measured here.
"""

import re

import pytest

from .conftest import save_screenshot

SCHEMES = ["light", "dark"]
COLOURS = """() => {
  const fill = (selector) => getComputedStyle(document.querySelector(selector)).fill;
  return {
    page: getComputedStyle(document.body).backgroundColor,
    ink: getComputedStyle(document.body).color,
    track: fill(".result .track"),
    bar: fill(".result:not(.mine) .fill"),
    mine: fill(".result.mine .fill"),
  };
}"""


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS `rgb(r, g, b)` colours."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_measured_as_wcag_defines_it():
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    assert contrast("rgb(118, 118, 118)", "rgb(255, 255, 255)") == pytest.approx(4.54, abs=0.01)


def test_result_bars_stand_out_from_their_track_and_the_page_in_both_schemes(tab, make_question):
    question = make_question("Tea or coffee?", choices=("Tea", "Coffee"))
    page = tab.page
    page.goto(f"/poll/{question['id']}")
    page.get_by_label("Tea").check()
    page.get_by_role("button", name="Vote").click()
    page.locator(".result.mine").wait_for()
    seen = {}
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        colours = page.evaluate(COLOURS)
        seen[scheme] = colours
        save_screenshot(page, f"results-{scheme}")
        for bar in ("bar", "mine"):
            for behind in ("track", "page"):
                ratio = contrast(colours[bar], colours[behind])
                what = f"{scheme}: {bar} {colours[bar]} on {behind} {colours[behind]}"
                assert ratio >= 3, f"{what}: {ratio:.2f}"
        assert contrast(colours["ink"], colours["page"]) >= 4.5, (scheme, colours)
    # The dark scheme is really another set of colours, not the light one again.
    black = "rgb(0, 0, 0)"
    assert contrast(seen["dark"]["page"], black) < 2 < contrast(seen["light"]["page"], black)
    assert seen["light"]["bar"] != seen["dark"]["bar"]
