"""The app's own error pages, and the config switches that change what is served."""

import io
from urllib.parse import urlencode

import sqlalchemy as sa

from aiohttpdemo_polls.app import init_app


async def test_unknown_url_is_404_page_in_site_layout(client):
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<a class="brand" href="/">Polls</a>' in page
    assert "Back to all polls" in page


async def test_body_limit_follows_the_config(aiohttp_client, config, make_question):
    config["max_body_size"] = 2048
    client = await aiohttp_client(init_app(config=config))
    question = make_question()
    response = await client.post(
        f"/poll/{question['id']}/vote",
        # A file-like body: aiohttp warns about large bodies given as bytes.
        data=io.BytesIO(urlencode({"choice": question["choices"][0], "pad": "x" * 4096}).encode()),
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


async def test_static_files_are_not_served_when_config_turns_them_off(aiohttp_client, config):
    config["debug"] = False
    client = await aiohttp_client(init_app(config=config))
    assert (await client.get("/static/style.css")).status == 404
    page = await (await client.get("/")).text()
    assert 'href="/static/style.css"' in page  # nginx serves them at the same URL
