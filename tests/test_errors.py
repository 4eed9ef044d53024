"""The app's own error pages, and the headers every response carries."""

import io
from urllib.parse import urlencode

import sqlalchemy as sa

from aiohttpdemo_polls.main import init_app


def form_body(**fields) -> io.BytesIO:
    # A file-like body: aiohttp warns about large bodies given as bytes.
    return io.BytesIO(urlencode(fields).encode())


async def test_unknown_url_is_404_page_in_site_layout(client):
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<a class="brand" href="/">Polls</a>' in page
    assert "Back to all polls" in page


async def test_body_over_the_limit_is_413_page(client, make_question, votes_of):
    question = make_question()
    response = await client.post(
        f"/poll/{question['id']}/vote",
        data=form_body(choice=question["choices"][0], padding="x" * (1024 * 1024 + 1)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413
    assert "Back to all polls" in await response.text()
    assert set(votes_of(question["id"]).values()) == {0}


async def test_body_limit_follows_the_config(aiohttp_client, config, make_question):
    config["max_body_size"] = 2048
    client = await aiohttp_client(init_app(config=config))
    question = make_question()
    response = await client.post(
        f"/poll/{question['id']}/vote",
        data=form_body(choice=question["choices"][0], pad="x" * 4096),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413


async def test_broken_database_gives_500_page_without_traceback(client, make_question, sync_engine, caplog):
    question = make_question()
    with sync_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE choice RENAME TO choice_gone"))
    try:
        response = await client.get(f"/poll/{question['id']}")
        page = await response.text()
    finally:
        with sync_engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE choice_gone RENAME TO choice"))
    assert response.status == 500
    assert "Something went wrong" in page and "Back to all polls" in page
    assert "Traceback" not in page and "choice_gone" not in page and "UndefinedTable" not in page
    assert any(record.exc_info for record in caplog.records), "the error is logged with its traceback"


async def test_every_response_carries_security_headers(client, make_question):
    question = make_question()
    for path in ("/", f"/poll/{question['id']}", "/missing", "/static/style.css"):
        response = await client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp


async def test_static_files_are_served_with_revalidation_in_development(client):
    response = await client.get("/static/style.css")
    assert response.status == 200
    assert response.content_type == "text/css"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Last-Modified" in response.headers or "ETag" in response.headers
    again = await client.get(
        "/static/style.css", headers={"If-Modified-Since": response.headers["Last-Modified"]}
    )
    assert again.status == 304


async def test_static_files_are_not_served_when_config_turns_them_off(aiohttp_client, config):
    config["debug"] = False
    client = await aiohttp_client(init_app(config=config))
    assert (await client.get("/static/style.css")).status == 404
    page = await (await client.get("/")).text()
    assert 'href="/static/style.css"' in page  # nginx serves them at the same URL
