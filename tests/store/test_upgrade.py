"""A database release 1.0.0 made (tests/fixtures/release-1.0.0.sql) upgraded in place by
init-db: every row kept, the newest revision recorded, nothing changed by a second run,
and its old polls vote, change votes, close and show results under the new code."""

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from psycopg2 import sql

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.store import migrate, pgserver, provision, tokens

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parents[1] / "fixtures" / "release-1.0.0.sql"
TEST_CONFIG = settings.PROJECT_ROOT / "config" / "polls_test.yaml"
KNOWN_TOKEN = "release-1-0-0-known-manage-token-poll-6"  # its sha256 is poll 6's token_hash
OPEN_POLL, MULTIPLE_POLL, CLOSED_POLL = 6, 7, 8
OLD_VOTER = "Browser01VoterIdAaaaaaaa"  # voted "Sushi" in poll 6
COUNT = re.compile(r'data-choice="(\d+)">.*?<span class="votes">(\d+)</span>', re.S)
# Release 1.0.0's columns, in its order: what the upgrade must keep, row for row.
TABLES = {
    "question": "id, question_text, pub_date, multiple, closes_at, closed_at, token_hash",
    "choice": "id, question_id, choice_text, votes",
    "ballot": "question_id, voter, cast_at",
    "vote": "question_id, voter, choice_id, voted_at",
}


@pytest.fixture
def released_database(stoppable_database) -> Iterator[str]:
    """A new database on a server of the test's own, loaded from the fixture; its URL."""
    admin = psycopg2.connect(stoppable_database.url)
    admin.autocommit = True
    try:
        admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("release_1_0_0")))
    finally:
        admin.close()
    url = pgserver.database_url(
        stoppable_database.url, {"user": pgserver.SUPERUSER, "password": "", "name": "release_1_0_0"}
    )
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(FIXTURE.read_text())
    finally:
        conn.close()
    yield url


def rows(url: str) -> dict[str, list[tuple]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            found = {}
            for table, columns in TABLES.items():
                cursor.execute(f"SELECT {columns} FROM {table} ORDER BY {columns}")
                found[table] = [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cursor
                ]
            return found
    finally:
        conn.close()


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value  # bytea comes as a memoryview


def revision(url: str) -> str | None:
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return migrate.current(conn)
    finally:
        engine.dispose()


def init_db(monkeypatch, url: str) -> int:
    monkeypatch.setenv("POLLS_DATABASE_URL", url)
    return provision.main(["-c", str(TEST_CONFIG)])


def test_fixture_is_a_release_1_0_0_database(released_database):
    before = rows(released_database)
    assert {table: len(found) for table, found in before.items()} == {
        "question": 8,
        "choice": 25,
        "ballot": 60,
        "vote": 64,
    }
    assert revision(released_database) == migrate.UNVERSIONED  # tables, but no alembic_version
    poll_6 = next(q for q in before["question"] if q[0] == OPEN_POLL)
    assert poll_6[-1] == tokens.hash_token(KNOWN_TOKEN)


async def test_init_db_upgrades_a_release_1_0_0_database_keeping_every_row(
    released_database, monkeypatch, capsys, aiohttp_client, vote, new_browser, vote_rows_match_counters
):
    before = rows(released_database)
    assert init_db(monkeypatch, released_database) == 0
    assert capsys.readouterr().out == f"database at 0001_release_1_0, upgraded to {migrate.head()}\n"
    assert revision(released_database) == migrate.head()
    assert rows(released_database) == before  # every poll, choice, ballot, vote and token hash

    assert init_db(monkeypatch, released_database) == 0  # again: nothing to do, nothing changed
    assert capsys.readouterr().out == f"database already at {migrate.head()}\n"
    assert rows(released_database) == before
    assert vote_rows_match_counters(released_database)

    config = settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": released_database})
    client = await aiohttp_client(init_app(config=config))
    texts = {c[2]: c[0] for c in before["choice"] if c[1] == OPEN_POLL}  # text -> id

    # A new voter on an old poll; an old voter (cookie from before the upgrade) changes theirs.
    newcomer = new_browser(client)
    assert (await vote(newcomer, OPEN_POLL, texts["Salad"])).status == 302
    old_voter = new_browser(client, headers={"Cookie": f"polls_voter={OLD_VOTER}"})
    changed = await vote(old_voter, OPEN_POLL, texts["Pizza"])
    assert changed.status == 302 and changed.headers["Location"].endswith("?changed=1")
    page = await (await old_voter.get(f"/poll/{OPEN_POLL}/results")).text()
    assert "(your vote)" in page
    multiple = {c[2]: c[0] for c in before["choice"] if c[1] == MULTIPLE_POLL}
    assert (
        await vote(new_browser(client), MULTIPLE_POLL, multiple["Monday"], multiple["Tuesday"])
    ).status == 302
    assert (await vote(new_browser(client), CLOSED_POLL, before["choice"][-1][0])).status == 409

    # The maker closes the old poll with the token made under release 1.0.0.
    manage = f"/poll/{OPEN_POLL}/manage/{KNOWN_TOKEN}"
    assert (await client.get(manage)).status == 200
    closed = await client.post(manage, data={"action": "close"}, allow_redirects=False)
    assert closed.status == 303
    results = await (await new_browser(client).get(f"/poll/{OPEN_POLL}")).text()
    assert "Voting closed" in results
    # Pizza 2 + the change, Sushi 3 - the change, Salad 1 + the newcomer: 7 votes in all.
    shown = {int(m[1]): int(m[2]) for m in COUNT.finditer(results)}
    assert shown == {texts["Pizza"]: 3, texts["Sushi"]: 2, texts["Salad"]: 2}
    assert 'class="total-votes">7<' in results
    assert vote_rows_match_counters(released_database)
