"""Security headers, strictly, on every page type and on static files.

A strict Content-Security-Policy (`default-src 'self'`, nothing inline), no framing,
no MIME sniffing, a Referrer-Policy; static files cached but revalidated. The browser
tests (tests/browser) fail on any CSP violation a page causes; this pins the headers.
"""

import asyncio
import io
import re
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web import headers

TEMPLATES = settings.PROJECT_ROOT / "templates"
STATIC = settings.PROJECT_ROOT / "static"
Fetch = Callable[[], Awaitable[aiohttp.ClientResponse]]


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_strict_headers(response: aiohttp.ClientResponse, what: str) -> None:
    headers = response.headers
    assert "Content-Security-Policy" in headers, what
    csp = csp_directives(headers["Content-Security-Policy"])
    assert csp.get("default-src") == ["'self'"], (what, csp)
    assert csp.get("frame-ancestors") == ["'none'"], (what, csp)
    for directive, sources in csp.items():
        for bad in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
            assert bad not in sources, (what, directive, sources)
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") in ("same-origin", "strict-origin"), what
    assert "Report-Only" not in "".join(headers.keys()), what


@pytest.fixture
async def page_requests(client, make_question, make_poll) -> dict[str, Fetch]:
    """One request for each page type the app answers with, by name."""
    question = make_question(choices=("Yes", "No"))
    qid = question["id"]
    poll = await make_poll()
    closed = await make_poll("Closed already?", choices=("A", "B"))
    await client.post(closed["manage"], data={"action": "close"})
    return {
        "index": lambda: client.get("/"),
        "poll": lambda: client.get(f"/poll/{qid}"),
        "closed poll": lambda: client.get(f"/poll/{closed['id']}"),
        "results": lambda: client.get(f"/poll/{qid}/results"),
        "vote redirect": lambda: client.post(
            f"/poll/{qid}/vote", data={"choice": question["choices"][0]}, allow_redirects=False
        ),
        "vote without a choice (400)": lambda: client.post(f"/poll/{qid}/vote", data={}),
        "vote on a closed poll (409)": lambda: client.post(
            f"/poll/{closed['id']}/vote", data={"choice": "1"}
        ),
        "not found (404)": lambda: client.get("/poll/99999"),
        "method not allowed (405)": lambda: client.get(f"/poll/{qid}/vote"),
        "body too large (413)": lambda: client.post(
            f"/poll/{qid}/vote",
            data=io.BytesIO(b"x" * (1024 * 1024 + 1)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        "cross-site post (403)": lambda: client.post(
            f"/poll/{qid}/vote", data={"choice": "1"}, headers={"Origin": "https://evil.example"}
        ),
        "new poll form": lambda: client.get("/poll/new"),
        "new poll with errors (400)": lambda: client.post("/poll/new", data={"question_text": ""}),
        "manage page": lambda: client.get(poll["manage"]),
        "delete confirmation": lambda: client.post(poll["manage"], data={"action": "delete"}),
        "deleted page": lambda: client.get("/poll/deleted"),
        "live endpoint without upgrade": lambda: client.get(f"/poll/{qid}/live"),
        "healthz": lambda: client.get("/healthz"),
    }


async def test_every_page_type_carries_the_strict_headers(page_requests):
    statuses = {}
    for name, fetch in page_requests.items():
        response = await fetch()
        await response.read()
        statuses[name] = response.status
        assert_strict_headers(response, name)
    # The tour did reach each kind of answer it names.
    assert statuses["not found (404)"] == 404
    assert statuses["vote without a choice (400)"] == 400
    assert statuses["vote on a closed poll (409)"] == 409
    assert statuses["body too large (413)"] == 413
    assert statuses["cross-site post (403)"] == 403
    assert statuses["vote redirect"] == 302
    assert statuses["manage page"] == statuses["delete confirmation"] == 200


def static_files() -> list[str]:
    return sorted(p.name for p in STATIC.iterdir() if p.is_file())


@pytest.mark.parametrize("name", static_files())
async def test_static_files_are_cached_with_revalidation(client, name):
    response = await client.get(f"/static/{name}")
    assert response.status == 200
    assert_strict_headers(response, name)
    assert "no-cache" in response.headers.get("Cache-Control", "")
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    assert etag or modified, "no validator: a browser could not revalidate cheaply"
    again = await client.get(
        f"/static/{name}",
        headers={"If-None-Match": etag} if etag else {"If-Modified-Since": modified},
    )
    assert again.status == 304
    assert_strict_headers(again, f"{name} (304)")


@pytest.mark.parametrize("name", static_files())
async def test_static_files_have_their_real_content_type(client, name):
    response = await client.get(f"/static/{name}")
    expected = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
    suffix = name[name.rfind(".") :]
    assert response.content_type in {expected.get(suffix), "application/javascript"}, (name, response)


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_have_nothing_inline_the_csp_would_block(template):
    text = (TEMPLATES / template).read_text()
    found = [what for pattern, what in INLINE if pattern.search(text)]
    assert found == [], f"{template}: {found}"


async def test_websocket_handshake_carries_no_page_headers(client, make_question):
    """A 101 has no document to protect, and a live socket keeps its response for hours:
    a thousand watchers would hold a thousand copies of the page headers."""
    question = make_question()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            f"GET /poll/{question['id']}/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().lower()
    finally:
        writer.close()
    assert head.startswith("http/1.1 101")
    assert "content-security-policy" not in head
    assert "x-frame-options" not in head


def test_every_address_holding_a_manage_token_is_marked_private(config):
    # The private headers follow the mark (web.headers.private), not the address: a route under
    # the token added without it would be cached and named in Referers.
    app = init_app(config=config)
    behind_token = {resource for resource in app.router.resources() if "{token" in resource.canonical}
    assert len(behind_token) == 8 and behind_token <= app[headers.private_resources_key]
