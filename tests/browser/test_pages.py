"""Every page type: readable on a phone without sideways scrolling, and accessible (axe-core)."""

import pytest

from .conftest import PHONE, save_screenshot, serious_accessibility_violations
from .tour import make_tour, visit

# What sticks out past the screen's right edge, to say why a page scrolls sideways.
WIDEST_ELEMENTS = """(limit) => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > limit)
  .slice(0, 5)
  .map((e) => {
    const right = Math.round(e.getBoundingClientRect().right);
    return `${e.tagName.toLowerCase()}.${e.getAttribute("class") || ""} (${right} px)`;
  })"""
# The page is in the dark scheme when the stylesheet's dark colours are in force.
IN_DARK_SCHEME = """() => matchMedia("(prefers-color-scheme: dark)").matches
  && getComputedStyle(document.body).backgroundColor === 'rgb(15, 23, 32)'"""


def test_every_page_fits_a_phone_screen(open_tab, live_server, make_question, add_votes):
    tab = open_tab(viewport=PHONE, is_mobile=True, has_touch=True)
    too_wide = {}
    for stop in make_tour(make_question, add_votes):
        visit(tab, live_server, stop)
        width = tab.page.evaluate("() => document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[stop.name] = (width, tab.page.evaluate(WIDEST_ELEMENTS, PHONE["width"]))
        save_screenshot(tab.page, f"phone-{stop.name}")
    assert too_wide == {}, f"pages wider than {PHONE['width']} px (scroll width, what sticks out): {too_wide}"


@pytest.mark.slow  # axe-core on every page type: about 8 s per scheme
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_has_no_serious_accessibility_violation(
    axe_tab, live_server, make_question, add_votes, scheme
):
    axe_tab.page.emulate_media(color_scheme=scheme)
    violations = {}
    for stop in make_tour(make_question, add_votes):
        visit(axe_tab, live_server, stop)
        assert axe_tab.page.evaluate(IN_DARK_SCHEME) == (scheme == "dark"), stop.name
        found = serious_accessibility_violations(axe_tab.page)
        if found:
            violations[stop.name] = found
    assert violations == {}, "axe-core found serious or critical violations:\n" + "\n".join(
        f"  {name}: {v}" for name, found in violations.items() for v in found
    )
