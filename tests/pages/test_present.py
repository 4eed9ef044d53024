"""The presenter view: question, QR code and link, results; a snapshot that needs no script."""

import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from aiohttpdemo_polls.app import init_app

BAD_IDS = ["abc", "0", "12345", "99999999999", "\u0661\u0662"]  # the last: Arabic-Indic digits


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside each <script>."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_texts: list[str] = []
        self._in_script = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_texts.append(data)

    def find(self, tag: str, **attrs: str | None) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(k in a and a[k] == v for k, v in attrs.items())]


async def test_presenter_view_shows_question_qr_code_link_and_results(client, make_question, add_votes):
    question = make_question("Which talk next?", choices=("Databases", "Browsers"))
    add_votes(question["id"], dict(zip(question["choices"], [3, 1], strict=True)))
    response = await client.get(f"/poll/{question['id']}/present")
    assert response.status == 200
    page = await response.text()
    link = str(client.make_url(f"/poll/{question['id']}"))
    assert '<h1 id="question">Which talk next?</h1>' in page
    # The QR code is an inline SVG drawn on the server, inside a labelled image.
    qr = re.search(
        r'<div class="qr" role="img" aria-label="([^"]+)"><svg ([^>]*)>(.*?)</svg></div>', page, re.S
    )
    assert qr, "no inline SVG QR code"
    assert html.unescape(qr[1]) == f"QR code of the link {link}"
    assert 'class="qr-code"' in qr[2] and 'viewBox="0 0 ' in qr[2]
    assert 'stroke="#000"' in qr[3] and 'fill="#fff"' in qr[3]  # dark on light, in any scheme
    # The link as text: the whole link as its target, without the scheme as its words.
    short = link.removeprefix("http://")
    assert f'<a href="{link}">{short}</a>' in page
    # The results as on the results page: counts, percentages, total, the live list.
    assert re.search(r'<span class="votes">3</span> votes · <span class="percent">75.0%</span>', page)
    assert re.search(r'<span class="votes">1</span> vote · <span class="percent">25.0%</span>', page)
    assert '<span class="total-votes">4</span> votes' in page
    assert f'data-live="/poll/{question["id"]}/live"' in page


async def test_presenter_view_of_an_unknown_or_unpublished_poll_is_the_404_page(client, make_question):
    future = make_question("Not yet?", days=3)
    for question_id in [*BAD_IDS, str(future["id"])]:
        response = await client.get(f"/poll/{question_id}/present")
        assert response.status == 404, question_id
        page = await response.text()
        assert "Not Found" in page and 'href="/"' in page
        assert "Not yet?" not in page


async def test_presenter_view_is_a_complete_page_without_javascript(client, make_question, add_votes):
    question = make_question("Lunch?", choices=("Soup", "Salad"))
    add_votes(question["id"], {question["choices"][1]: 2})
    response = await client.get(f"/poll/{question['id']}/present")
    page = Elements(await response.text())
    # Scripts only from files under /static/, deferred; no inline script or style (strict CSP).
    scripts = page.find("script")
    assert {s["src"] for s in scripts} == {"/static/live.js", "/static/present.js"}
    assert all("defer" in s for s in scripts)
    assert page.script_texts == []
    assert [tag for tag, attrs in page.tags if "style" in attrs or tag == "style"] == []
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self' governs
    # The full-screen button waits for the script; refreshing is a plain link to this page.
    (button,) = page.find("button", **{"data-fullscreen": None})
    assert "hidden" in button
    assert page.find("a", href=f"/poll/{question['id']}/present")
    # The numbers are in the page as served: it is a snapshot, not an empty shell.
    fills = [attrs.get("width") for tag, attrs in page.tags if tag == "rect" and attrs.get("class") == "fill"]
    assert fills == ["0.0", "100.0"]


async def test_closed_poll_is_presented_with_its_results_and_says_so(client, make_question, add_votes):
    question = make_question("Done?", choices=("Yes", "No"), closed_at=datetime.now(UTC) - timedelta(hours=1))
    add_votes(question["id"], {question["choices"][0]: 1})
    response = await client.get(f"/poll/{question['id']}/present")
    page = await response.text()
    assert response.status == 200
    assert "Voting has closed." in page and '<span class="total-votes">1</span> vote' in page


async def test_presenter_view_links_over_https_when_the_site_is_served_over_it(
    aiohttp_client, config, make_question
):
    client = await aiohttp_client(init_app(config={**config, "https": True}))
    question = make_question("Secure?")
    page = await (await client.get(f"/poll/{question['id']}/present")).text()
    host = client.make_url("/").authority
    assert f'<a href="https://{host}/poll/{question["id"]}">{host}/poll/{question["id"]}</a>' in page


@pytest.mark.parametrize("page", ["results", "manage"])
async def test_results_and_manage_pages_link_to_the_presenter_view(client, make_poll, page):
    poll = await make_poll("Present me?")
    path = poll["manage"] if page == "manage" else f"/poll/{poll['id']}/results"
    body = await (await client.get(path)).text()
    assert f'<a href="/poll/{poll["id"]}/present">Present on a screen</a>' in body
