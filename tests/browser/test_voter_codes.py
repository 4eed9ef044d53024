"""Voter codes in a real browser: the maker requires them and makes a batch, prints the
cards, and a voter's phone scans a card's QR code and votes with the code it brings."""

import re

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from .conftest import save_screenshot
from .test_pictures import publish

PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True}


def scanned(path) -> list[str]:
    with Image.open(path) as picture:
        return [code.text for code in zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)]


def make_code_poll_in_the_browser(page, lock_votes: bool) -> str:
    """A poll made and set to require codes, with two codes made: the cards page's address."""
    page.goto("/poll/new")
    page.get_by_label("Question").fill("Who should chair the club?")
    page.get_by_label("Choice 1", exact=True).fill("Ada")
    page.get_by_label("Choice 2", exact=True).fill("Grace")
    if lock_votes:
        page.get_by_label("Voters cannot change their vote").check()
    page.get_by_role("button", name="Create poll").click()
    expect(page).to_have_url(re.compile(r"/poll/\d+/manage/"))
    page.get_by_role("button", name="Require a voter code to vote").click()
    expect(page.locator(".notice")).to_have_text("From now on, a vote needs one of your voter codes.")
    page.get_by_label("How many codes").fill("2")
    page.get_by_role("button", name="Make codes").last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("2 new voter codes")
    page.get_by_role("link", name="Printable cards").click()
    expect(page.locator(".code-card")).to_have_count(2)
    return page.url


def test_a_voter_scans_a_cards_qr_code_and_votes_with_the_code_it_brings(open_tab, live_server, votes_of):
    maker = open_tab(viewport={"width": 1024, "height": 900}, device_scale_factor=2).page
    make_code_poll_in_the_browser(maker, lock_votes=True)
    card = maker.locator(".code-card").first
    printed = card.locator("[data-code]").inner_text()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", printed)
    path = save_screenshot(maker, "voter-codes-cards", full_page=False)
    publish(path, "voter-codes.png")
    card.locator(".qr").screenshot(path=str(path.with_name("voter-code-qr.png")))
    links = scanned(path.with_name("voter-code-qr.png"))
    assert len(links) == 1 and links[0].startswith(live_server) and links[0].endswith(f"?code={printed}")

    phone = open_tab(**PHONE)
    phone.page.goto(links[0])
    expect(phone.page.get_by_label("Your voter code")).to_have_value(printed)
    phone.page.get_by_label("Grace").check()
    phone.page.get_by_role("button", name="Vote").click()
    expect(phone.page.locator(".result.mine")).to_contain_text("Grace")

    # The same card in another browser shows the code's ballot, for good (votes are locked)...
    other = open_tab(**PHONE)
    other.page.goto(links[0])
    expect(other.page.locator("#your-vote")).to_contain_text("You voted for Grace.")
    expect(other.page.locator("#your-vote")).to_contain_text("Votes in this poll cannot be changed.")
    expect(other.page.get_by_role("button", name="Vote")).to_have_count(0)
    # ...and the code typed there again is used up: a 403 that says so.
    poll_url = re.sub(r"\?.*", "", links[0])
    other.expect_error_status(poll_url + "/vote", 403)
    other.page.goto(poll_url)
    other.page.get_by_label("Ada").check()
    other.page.get_by_label("Your voter code").fill(printed)
    other.page.get_by_role("button", name="Vote").click()
    expect(other.page.get_by_role("alert")).to_have_text(
        "This voter code has already been used, and votes in this poll cannot be changed."
    )
    poll_id = int(re.search(r"/poll/(\d+)", poll_url)[1])
    assert sum(votes_of(poll_id).values()) == 1


def test_a_typed_code_changes_its_vote_from_another_browser_and_a_wrong_one_is_refused(open_tab, votes_of):
    maker = open_tab(viewport={"width": 1024, "height": 900}).page
    make_code_poll_in_the_browser(maker, lock_votes=False)
    code = maker.locator("[data-code]").first.inner_text()
    poll_url = maker.locator(".code-card .card-link").first.inner_text().split("go to ")[1].split(" ")[0]
    poll_id = int(re.search(r"/poll/(\d+)", poll_url)[1])

    laptop = open_tab(viewport={"width": 1024, "height": 768}, java_script_enabled=False)
    laptop.expect_error_status(f"{poll_url}/vote", 403)
    laptop.page.goto(f"/poll/{poll_id}")
    laptop.page.get_by_label("Ada").check()
    laptop.page.get_by_label("Your voter code").fill("7K3QX-M9PDA")
    laptop.page.get_by_role("button", name="Vote").click()
    expect(laptop.page.get_by_role("alert")).to_have_text(
        "That is not one of this poll's voter codes. Check it and try again."
    )
    expect(laptop.page.get_by_label("Ada")).to_be_checked()  # nothing of the form is lost
    laptop.page.get_by_label("Your voter code").fill(code.lower().replace("-", " "))
    laptop.page.get_by_role("button", name="Vote").click()
    expect(laptop.page.locator(".result.mine")).to_contain_text("Ada")

    phone = open_tab(**PHONE)
    phone.page.goto(f"/poll/{poll_id}")
    phone.page.get_by_label("Grace").check()
    phone.page.get_by_label("Your voter code").fill(code)
    phone.page.get_by_role("button", name="Vote").click()
    expect(phone.page.locator(".notice")).to_have_text("Your vote was changed.")
    expect(phone.page.locator(".result.mine")).to_contain_text("Grace")
    assert sorted(votes_of(poll_id).values()) == [0, 1]


def test_the_cards_print_two_across_with_nothing_of_the_site_around_them(open_tab):
    page = open_tab(viewport={"width": 420, "height": 900}).page
    make_code_poll_in_the_browser(page, lock_votes=False)
    first, second = (page.locator(".code-card").nth(n) for n in range(2))
    assert first.bounding_box()["y"] < second.bounding_box()["y"]  # one column on a phone's screen
    page.emulate_media(media="print")
    expect(page.locator("header.site")).to_be_hidden()
    expect(page.locator("footer.site")).to_be_hidden()
    expect(page.locator(".screen-only")).to_be_hidden()
    assert first.bounding_box()["y"] == second.bounding_box()["y"]  # two across on paper
    assert first.bounding_box()["x"] < second.bounding_box()["x"]
