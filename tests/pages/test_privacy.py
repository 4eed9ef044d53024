"""/privacy: what the site stores and for how long, written from the settings it runs with, in
the four languages, and linked from every page's footer."""

import re

import pytest

from aiohttpdemo_polls.app import init_app

FOOTER_LINK = re.compile(r'<footer class="site">.*<a href="/privacy">[^<]+</a></footer>', re.S)


def text(page: str) -> str:
    """The page's words, tags dropped and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


async def test_privacy_page_says_what_is_stored_and_for_how_long(client):
    response = await client.get("/privacy")
    assert response.status == 200
    words = text(await response.text())
    assert "polls_voter : a random id this browser gets with its first vote" in words
    assert "It lasts 365 days." in words
    assert "polls_lang : the language you picked" in words
    assert "A vote is stored as a ballot" in words and "“Remove my vote”" in words
    assert "A poll is deleted 180 days after voting on it closes, with all its votes and reports." in words
    assert "If you report a poll, the report" in words
    assert "Each count is deleted as soon as its hour is over." in words
    # A date poll asks for a name: stored with the answers, and shown to whom.
    assert "the name you type is stored with your answers" in words
    assert "Everyone who opens the poll sees the names and answers" in words
    assert "show the names only to themselves" in words and "“Remove my row”" in words


@pytest.mark.parametrize(
    ("closed_days", "said"),
    [
        (30, "A poll is deleted 30 days after voting on it closes"),
        (1, "A poll is deleted 1 day after voting on it closes"),
        (0, "A poll is kept, with its votes and reports, until its maker deletes it."),
    ],
)
async def test_privacy_page_follows_the_retention_setting(aiohttp_client, config, closed_days, said):
    client = await aiohttp_client(init_app(config={**config, "retention": {"closed_days": closed_days}}))
    words = text(await (await client.get("/privacy")).text())
    assert said in words
    assert "180 days" not in words


@pytest.mark.parametrize(
    ("language", "title", "retention"),
    [
        ("de", "<h1>Datenschutz</h1>", "Eine Umfrage wird 180 Tage nach dem Ende ihrer Abstimmung gelöscht"),
        ("fr", "<h1>Confidentialité</h1>", "Un sondage est supprimé 180 jours après la clôture de son vote"),
        ("es", "<h1>Privacidad</h1>", "Una encuesta se elimina 180 días después de que termine su votación"),
    ],
)
async def test_privacy_page_is_written_in_each_language(client, language, title, retention):
    page = await (await client.get("/privacy", headers={"Accept-Language": language})).text()
    assert f'<html lang="{language}">' in page
    assert title in page and retention in text(page)


async def test_every_page_links_to_privacy_in_its_footer(client, make_poll, make_question, vote):
    poll = await make_poll()
    question = make_question()
    await vote(client, question["id"], question["choices"][0])
    pages = [
        "/",
        "/poll/new",
        f"/poll/{question['id']}",
        f"/poll/{question['id']}/results",
        f"/poll/{question['id']}/present",
        poll["manage"],
        "/privacy",
        "/poll/999999",  # the error page too
    ]
    for path in pages:
        page = await (await client.get(path)).text()
        assert FOOTER_LINK.search(page), path
