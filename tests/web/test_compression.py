"""HTML is gzipped for clients that take it: a cached page once, when it is cached; others as they go."""

import gzip

import pytest
from multidict import CIMultiDict

from aiohttpdemo_polls.web import vary
from aiohttpdemo_polls.web.cache import cache_key
from aiohttpdemo_polls.web.compression import MIN_SIZE, Page, accepts_gzip


async def fetch(session, path: str, accept_encoding: str | None, method: str = "GET", **request):
    """(response, body as sent): `accept_encoding` None sends no Accept-Encoding at all."""
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    response = await session.request(
        method,
        path,
        headers=headers,
        skip_auto_headers={"Accept-Encoding"},
        auto_decompress=False,
        allow_redirects=False,
        **request,
    )
    return response, await response.read()


def varies_on_encoding(response) -> bool:
    return "accept-encoding" in response.headers.get("Vary", "").lower().replace(" ", "").split(",")


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("x-gzip", True),
        ("*", True),
        ("deflate, *;q=0.5", True),
        ("", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip; q=0.000, deflate", False),
        ("deflate, gzip;q=0", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # named: its own q decides, not the star's
        ("gzip;q=nonsense", False),
        ("gzip;q=2", False),
    ],
)
def test_accept_encoding_is_read_with_its_q_values(accept_encoding, gzipped):
    assert accepts_gzip(accept_encoding) is gzipped


async def test_cached_pages_are_gzipped_for_clients_that_take_gzip_and_plain_for_others(
    client, anonymous, make_question
):
    question = make_question("Tea or coffee?", choices=("Tea", "Coffee"))
    for path in ("/", f"/poll/{question['id']}", f"/poll/{question['id']}/results"):
        plain_response, plain = await fetch(anonymous, path, None)
        assert plain_response.status == 200, path
        assert "Content-Encoding" not in plain_response.headers, path
        assert varies_on_encoding(plain_response), path
        assert plain.startswith(b"<!doctype html>") and b"Tea or coffee?" in plain, path
        for refused in ("gzip;q=0", "identity", "br"):
            response, body = await fetch(anonymous, path, refused)
            assert "Content-Encoding" not in response.headers and body == plain, (path, refused)

        response, body = await fetch(anonymous, path, "gzip, deflate")
        assert response.status == 200, path
        assert response.headers["Content-Encoding"] == "gzip", path
        assert response.headers["Content-Type"] == "text/html; charset=utf-8", path
        assert varies_on_encoding(response), path
        assert int(response.headers["Content-Length"]) == len(body) < len(plain) / 2, path
        assert gzip.decompress(body) == plain, path


async def test_a_cached_page_is_compressed_once_and_then_served_as_kept(
    client, anonymous, make_question, settled
):
    question = make_question("Compressed once?")
    await settled()  # no late notice of the setup drops the page between the requests
    path = f"/poll/{question['id']}"
    key = ("poll", question["id"], f"{client.host}:{client.port}", "en")  # no Accept-Language: English
    first_response, first = await fetch(anonymous, path, "gzip")
    kept = client.app[cache_key].peek(key)
    assert isinstance(kept, Page)
    second_response, second = await fetch(anonymous, path, "gzip")
    _, plain = await fetch(anonymous, path, None)
    # The very bytes made when the page was cached went out each time: made by Python's gzip at
    # level 9, which aiohttp's on-the-fly compressor (zlib, another header) would not repeat.
    assert client.app[cache_key].peek(key) is kept
    assert first == second == kept.gzipped
    assert first_response.headers["Content-Encoding"] == second_response.headers["Content-Encoding"] == "gzip"
    assert plain == kept.plain == gzip.decompress(kept.gzipped)
    assert b"Compressed once?" in plain


async def test_pages_made_per_request_are_gzipped_on_the_way_out(client, anonymous, make_question, vote):
    question = make_question("Per request?", choices=("Yes", "No"))
    counted = await vote(client, question["id"], question["choices"][0])
    assert counted.status == 302
    requests = {
        "a voter's results": ("GET", f"/poll/{question['id']}/results", client, b"(your vote)"),
        "the new poll form": ("GET", "/poll/new", anonymous, b"New poll"),
        "the presenter view": ("GET", f"/poll/{question['id']}/present", anonymous, b"Scan to vote"),
        "a 404 page": ("GET", "/poll/987654", anonymous, b"There is no such page"),
        "the 400 vote form": ("POST", f"/poll/{question['id']}/vote", anonymous, b"select a choice"),
    }
    for name, (method, path, session, text) in requests.items():
        plain_response, plain = await fetch(session, path, None, method)
        response, body = await fetch(session, path, "gzip", method)
        assert response.status == plain_response.status, name
        assert "Content-Encoding" not in plain_response.headers and text in plain, name
        assert response.headers.get("Content-Encoding") == "gzip", name
        assert varies_on_encoding(response) and varies_on_encoding(plain_response), name
        assert text in gzip.decompress(body), name
        refused, refused_body = await fetch(session, path, "gzip;q=0, deflate", method)
        assert "Content-Encoding" not in refused.headers and text in refused_body, name


async def test_what_is_not_an_html_page_is_never_compressed(client, anonymous, make_question):
    question = make_question()
    for path in ("/robots.txt", "/healthz", "/static/style.css", "/static/live.js"):
        response, body = await fetch(anonymous, path, "gzip")
        assert response.status == 200, path
        assert "Content-Encoding" not in response.headers, path
        assert not body.startswith(b"\x1f\x8b"), path
    # Big enough that it would be compressed, were it a page.
    assert len((await fetch(anonymous, "/static/style.css", "gzip"))[1]) > MIN_SIZE
    async with anonymous.ws_connect(
        f"/poll/{question['id']}/live", headers={"Accept-Encoding": "gzip"}
    ) as ws:
        assert (await ws.receive_json(timeout=10))["question_id"] == question["id"]


def vary_names(response) -> list[str]:
    """What the response's one Vary header lists, in lower case; a second Vary header fails."""
    values = response.headers.getall("Vary", [])
    assert len(values) == 1, f"{len(values)} Vary headers: {values}"
    return [name.strip().lower() for name in values[0].split(",")]


async def test_every_page_has_one_vary_header_naming_encoding_language_and_cookie_once(
    client, anonymous, make_question, vote
):
    # Encoding: gzip or not. Language and Cookie: Accept-Language, or the switch's cookie.
    question = make_question("One Vary?", choices=("Yes", "No"))
    qid = question["id"]
    assert (await vote(client, qid, question["choices"][0])).status == 302
    requests = {
        "the index (cached)": ("GET", "/", anonymous),
        "the poll (cached)": ("GET", f"/poll/{qid}", anonymous),
        "the results (cached)": ("GET", f"/poll/{qid}/results", anonymous),
        "a voter's results (made per request)": ("GET", f"/poll/{qid}/results", client),
        "the new poll form": ("GET", "/poll/new", anonymous),
        "a 404 page": ("GET", "/poll/987654", anonymous),
        "the 400 vote form": ("POST", f"/poll/{qid}/vote", anonymous),
    }
    for accept_encoding in ("gzip", None):
        for name, (method, path, session) in requests.items():
            response, _ = await fetch(session, path, accept_encoding, method)
            assert response.content_type == "text/html", name
            listed = vary_names(response)
            assert sorted(listed) == ["accept-encoding", "accept-language", "cookie"], (name, listed)
    # Files that are not pages depend on none of it.
    for path in ("/robots.txt", "/healthz", "/api/openapi.json"):
        response, _ = await fetch(anonymous, path, "gzip")
        assert "Vary" not in response.headers, path


def test_vary_names_merge_into_one_header_each_once_whatever_their_case():
    headers = CIMultiDict([("Vary", "Accept-Encoding"), ("Vary", "cookie, Origin")])
    vary.add(headers, "Accept-Language", "Cookie", "accept-encoding")
    assert headers.getall("Vary") == ["Accept-Encoding, cookie, Origin, Accept-Language"]
    vary.add(headers, "*")
    assert headers.getall("Vary") == ["*"]
    fresh = CIMultiDict()
    vary.add(fresh, "Accept-Encoding")
    assert fresh.getall("Vary") == ["Accept-Encoding"]
