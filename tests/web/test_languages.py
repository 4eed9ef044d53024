"""Every page in English, German, French and Spanish: chosen by Accept-Language or the switch,
written with the language's dates and numbers, and cached per language."""

import re
from datetime import UTC, datetime

import pytest

from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web import i18n
from aiohttpdemo_polls.web.cache import cache_key

NBSP = "\u00a0"
# A known sentence of each kind of page, as each catalog says it.
PAGES = {
    "en": {
        "index": "Latest polls",
        "poll": ">Vote</button>",
        "no_choice": "You didn&#39;t select a choice.",
        "not_found": "Not Found",
        "not_found_text": "There is no such page.",
    },
    "de": {
        "index": "Neueste Umfragen",
        "poll": ">Abstimmen</button>",
        "no_choice": "Sie haben keine Antwort ausgewählt.",
        "not_found": "Nicht gefunden",
        "not_found_text": "Diese Seite gibt es nicht.",
    },
    "fr": {
        "index": "Derniers sondages",
        "poll": ">Voter</button>",
        "no_choice": "Vous n\u2019avez choisi aucune réponse.",
        "not_found": "Introuvable",
        "not_found_text": "Cette page n\u2019existe pas.",
    },
    "es": {
        "index": "Últimas encuestas",
        "poll": ">Votar</button>",
        "no_choice": "No has elegido ninguna opción.",
        "not_found": "No encontrado",
        "not_found_text": "Esta página no existe.",
    },
}


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)">', page)
    assert match, page[:200]
    return match[1]


@pytest.mark.parametrize("language", sorted(PAGES))
async def test_each_language_writes_index_poll_no_choice_form_and_404(anonymous, make_question, language):
    question = make_question("Pizza?", choices=("Yes", "No"))
    expected = PAGES[language]
    headers = {"Accept-Language": language}

    index = await anonymous.get("/", headers=headers)
    text = await index.text()
    assert index.status == 200 and expected["index"] in text and html_lang(text) == language

    poll = await anonymous.get(f"/poll/{question['id']}", headers=headers)
    text = await poll.text()
    assert poll.status == 200 and expected["poll"] in text and html_lang(text) == language

    no_choice = await anonymous.post(f"/poll/{question['id']}/vote", data={}, headers=headers)
    text = await no_choice.text()
    assert no_choice.status == 400 and expected["no_choice"] in text and html_lang(text) == language

    missing = await anonymous.get("/poll/999999", headers=headers)
    text = await missing.text()
    assert missing.status == 404 and html_lang(text) == language
    assert f"<h1>{expected['not_found']} " in text and expected["not_found_text"] in text


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en;q=0.5, fr;q=0.9", "fr"),  # the q-values rank, not the order
        ("es-MX", "es"),
        ("pt-BR, ja;q=0.8", "en"),  # none of ours: English
        ("pt-BR, es;q=0.1", "es"),  # a low q-value still beats a language we lack
        ("fr;q=0, de;q=0.2", "de"),  # q=0 means "not this one"
        ("fr;q=abc, es", "es"),  # a malformed q-value counts as 0
        ("*", "en"),
        ("", "en"),
        ("de;q=1.5, fr", "fr"),  # q above 1 is not a valid preference
    ],
)
def test_accept_language_is_ranked_by_q_value_and_falls_back_to_english(accept_language, language):
    assert i18n.negotiate(accept_language) == language


async def test_unknown_languages_get_the_english_page(anonymous):
    page = await (await anonymous.get("/", headers={"Accept-Language": "pt-BR, ja;q=0.5"})).text()
    assert html_lang(page) == "en" and "Latest polls" in page


async def test_switch_sets_the_cookie_returns_to_the_page_and_wins_over_accept_language(
    client, make_question
):
    question = make_question("Which language?")
    path = f"/poll/{question['id']}"
    french = {"Accept-Language": "fr"}
    assert html_lang(await (await client.get(path, headers=french)).text()) == "fr"

    switched = await client.post(
        "/language", data={"language": "de", "next": path}, headers=french, allow_redirects=False
    )
    assert switched.status == 303 and switched.headers["Location"] == path
    cookie = switched.cookies[i18n.COOKIE]
    assert cookie.value == "de" and cookie["path"] == "/" and cookie["samesite"] == "Lax"

    page = await (await client.get(path, headers=french)).text()
    assert html_lang(page) == "de" and ">Abstimmen</button>" in page


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "poll/1", "/a\r\nSet-Cookie: x=1"],
)
async def test_switch_returns_only_to_a_path_on_this_site(anonymous, next_path):
    switched = await anonymous.post(
        "/language", data={"language": "es", "next": next_path}, allow_redirects=False
    )
    assert switched.status == 303 and switched.headers["Location"] == "/"


async def test_switch_refuses_a_language_the_site_lacks(anonymous):
    refused = await anonymous.post("/language", data={"language": "pt", "next": "/"}, allow_redirects=False)
    assert refused.status == 400 and i18n.COOKIE not in refused.cookies
    assert "That language is not one this site is written in." in await refused.text()


async def test_every_page_has_the_switch_back_to_itself(anonymous, make_question):
    question = make_question("Switch here?")
    page = await (await anonymous.get(f"/poll/{question['id']}/results")).text()
    assert '<form class="languages" method="post" action="/language"' in page
    assert f'name="next" value="/poll/{question["id"]}/results"' in page
    for code, name in i18n.NAMES.items():
        assert f'value="{code}" lang="{code}"' in page and f">{name}</button>" in page


async def test_percentages_counts_and_dates_are_written_the_languages_way(
    anonymous, make_question, add_votes
):
    closes_at = datetime(2030, 1, 2, 15, 4, tzinfo=UTC)
    question = make_question("Four to three?", choices=("Four", "Three"), closes_at=closes_at)
    add_votes(question["id"], dict(zip(question["choices"], [4, 3], strict=True)))
    results = f"/poll/{question['id']}/results"

    def get(language: str, path: str = results):
        return anonymous.get(path, headers={"Accept-Language": language})

    assert '<span class="percent">57.1%</span>' in await (await get("en")).text()
    german = await (await get("de")).text()
    assert f'<span class="percent">57,1{NBSP}%</span>' in german
    assert '<span class="votes">4</span> Stimmen · ' in german
    assert f'<span class="percent">57,1{NBSP}%</span>' in await (await get("fr")).text()

    poll = f"/poll/{question['id']}"
    assert "Voting closes Jan 2, 2030, 3:04\u202fPM UTC." in await (await get("en", poll)).text()
    assert "Die Abstimmung endet am 02.01.2030, 15:04 UTC." in await (await get("de", poll)).text()
    assert "Le vote se termine le 2 janv. 2030, 15:04 UTC." in await (await get("fr", poll)).text()


async def test_french_says_zero_vote_in_the_singular(anonymous, make_question):
    question = make_question("Personne ?", choices=("Oui", "Non"))
    page = await (
        await anonymous.get(f"/poll/{question['id']}/results", headers={"Accept-Language": "fr"})
    ).text()
    assert '<span class="total-votes">0</span> vote</p>' in page


async def test_form_messages_are_in_the_readers_language(anonymous):
    data = [("question_text", ""), ("choice", "Only one")]
    page = await (await anonymous.post("/poll/new", data=data, headers={"Accept-Language": "es"})).text()
    assert "Escribe una pregunta." in page
    assert "Indica al menos 2 opciones." in page  # a message with a value in it


async def test_cached_pages_do_not_leak_one_language_into_another(client, anonymous, make_question):
    question = make_question("Cached in two languages?")
    path = f"/poll/{question['id']}"
    german = await (await anonymous.get(path, headers={"Accept-Language": "de"})).text()
    english = await (await anonymous.get(path, headers={"Accept-Language": "en"})).text()
    german_again = await (await anonymous.get(path, headers={"Accept-Language": "de"})).text()

    assert html_lang(german) == "de" and ">Abstimmen</button>" in german
    assert html_lang(english) == "en" and ">Vote</button>" in english and "Abstimmen" not in english
    assert german_again == german
    host = f"{client.host}:{client.port}"
    pages = client.app[cache_key]
    assert ("poll", question["id"], host, "de") in pages and ("poll", question["id"], host, "en") in pages


async def test_pages_tell_shared_caches_they_vary_by_language(anonymous, make_question):
    question = make_question("Vary?")
    for path in ("/", f"/poll/{question['id']}", "/poll/999999"):
        response = await anonymous.get(path)
        varies = ",".join(response.headers.getall("Vary", []))
        assert "Accept-Language" in varies and "Cookie" in varies, path


async def test_switch_on_a_page_answering_a_post_returns_to_an_address_to_get(anonymous, make_question):
    question = make_question("Posted?")
    form = await (await anonymous.post(f"/poll/{question['id']}/vote", data={})).text()
    assert f'name="next" value="/poll/{question["id"]}"' in form  # the poll, not its /vote
    refused = await (await anonymous.post(f"/poll/{question['id']}/nothing-here")).text()
    assert 'name="next" value="/"' in refused


async def test_hidden_results_and_a_changed_vote_are_told_in_the_readers_language(
    client, make_question, vote
):
    question = make_question("Changed in German?", choices=("Ja", "Nein"), results="after_vote")
    yes, no = question["choices"]
    german = {"Accept-Language": "de"}
    results = f"/poll/{question['id']}/results"

    hidden = await (await client.get(results, headers=german)).text()
    assert "Die Ergebnisse werden angezeigt, sobald Sie abgestimmt haben." in hidden
    await vote(client, question["id"], yes, headers=german)
    poll = await (await client.get(f"/poll/{question['id']}", headers=german)).text()
    assert "Sie haben für Ja gestimmt. Sie können Ihre Stimme ändern, solange die Abstimmung läuft." in poll
    assert ">Meine Stimme ändern</button>" in poll
    changed = await vote(client, question["id"], no, headers=german, allow_redirects=True)
    assert "Ihre Stimme wurde geändert." in await changed.text()


async def test_new_poll_form_and_manage_page_write_results_settings_in_the_readers_language(
    client, make_poll
):
    spanish = {"Accept-Language": "es"}
    form = await (await client.get("/poll/new", headers=spanish)).text()
    for text in ("Quién ve los resultados", "Siempre: todos ven los recuentos", "no pueden cambiar su voto"):
        assert text in form
    made = await make_poll(lock_votes="on", results="after_close")
    page = await (await client.get(made["manage"], headers={"Accept-Language": "fr"})).text()
    for text in (
        "Vous seul voyez les décomptes",
        "Les votants ne peuvent pas modifier leur vote.",
        "Résultats en CSV",
        "Tous les bulletins en CSV",
    ):
        assert text in page


async def test_the_creation_key_field_and_its_refusal_are_in_the_readers_language(aiohttp_client, config):
    keyed = await aiohttp_client(init_app(config={**config, "creation": "key", "creation_key": "k"}))
    german = {"Accept-Language": "de"}
    form = await (await keyed.get("/poll/new", headers=german)).text()
    assert ">Erstellungsschlüssel</label>" in form
    data = [("question_text", "Schlüssel?"), ("choice", "Ja"), ("choice", "Nein"), ("creation_key", "x")]
    refused = await keyed.post("/poll/new", data=data, headers=german)
    assert refused.status == 403
    assert "Dieser Erstellungsschlüssel ist nicht richtig." in await refused.text()
