"""A database at release 2's schema (revision 0004_poll_creations), with polls, ballots and
votes of every setting, upgraded in place by init-db: every row kept, and its polls still
vote, change votes and close under the new code. Each later migration adds its checks here."""

from collections.abc import Iterator

import psycopg2
import pytest
import sqlalchemy as sa
from psycopg2 import sql

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.store import migrate, pgserver, provision, tokens

pytestmark = pytest.mark.slow

RELEASE_2 = "0004_poll_creations"
TEST_CONFIG = settings.PROJECT_ROOT / "config" / "polls_test.yaml"
TOKEN = "release-2-known-manage-token-of-poll-1"
OPEN, MULTIPLE, CLOSED, LOCKED = 1, 2, 3, 4
# Release 2's columns: what every upgrade after it must keep, row for row.
TABLES = {
    "question": "id, question_text, pub_date, multiple, closes_at, closed_at, token_hash, results,"
    " lock_votes",
    "choice": "id, question_id, choice_text, votes",
    "ballot": "question_id, voter, cast_at, changes",
    "vote": "question_id, voter, choice_id, voted_at",
    "poll_creation": "id, client, created_at",
}
RELEASE_2_ROWS = """
INSERT INTO question (id, question_text, pub_date, multiple, closes_at, closed_at, token_hash,
                      results, lock_votes) VALUES
  (1, 'Lunch on Friday?', '2026-01-10 12:00+00', false, NULL, NULL, %(token_hash)s, 'always', false),
  (2, 'Which days suit you?', '2026-01-11 12:00+00', true, '2099-01-01 00:00+00', NULL, NULL,
   'after_vote', false),
  (3, 'Team name?', '2026-01-12 12:00+00', false, NULL, '2026-02-01 00:00+00', NULL, 'after_close', false),
  (4, 'Final answer only?', '2026-01-13 12:00+00', false, NULL, NULL, NULL, 'always', true);
INSERT INTO choice (id, question_id, choice_text, votes) VALUES
  (1, 1, 'Pizza', 2), (2, 1, 'Salad', 1), (3, 1, 'Soup', 0),
  (4, 2, 'Monday', 2), (5, 2, 'Tuesday', 1), (6, 2, 'Wednesday', 0),
  (7, 3, 'Owls', 1), (8, 3, 'Foxes', 0),
  (9, 4, 'Yes', 1), (10, 4, 'No', 0);
INSERT INTO ballot (question_id, voter, cast_at, changes) VALUES
  (1, 'Release2VoterAaaaaaaaaaa', '2026-01-20 10:00+00', 0),
  (1, 'Release2VoterBbbbbbbbbbb', '2026-01-20 10:01+00', 2),
  (1, 'Release2VoterCcccccccccc', '2026-01-20 10:02+00', 0),
  (2, 'Release2VoterAaaaaaaaaaa', '2026-01-21 10:00+00', 0),
  (2, 'Release2VoterBbbbbbbbbbb', '2026-01-21 10:01+00', 1),
  (3, 'Release2VoterAaaaaaaaaaa', '2026-01-22 10:00+00', 0),
  (4, 'Release2VoterAaaaaaaaaaa', '2026-01-23 10:00+00', 0);
INSERT INTO vote (question_id, voter, choice_id, voted_at) VALUES
  (1, 'Release2VoterAaaaaaaaaaa', 1, '2026-01-20 10:00+00'),
  (1, 'Release2VoterBbbbbbbbbbb', 1, '2026-01-20 10:05+00'),
  (1, 'Release2VoterCcccccccccc', 2, '2026-01-20 10:02+00'),
  (2, 'Release2VoterAaaaaaaaaaa', 4, '2026-01-21 10:00+00'),
  (2, 'Release2VoterAaaaaaaaaaa', 5, '2026-01-21 10:00+00'),
  (2, 'Release2VoterBbbbbbbbbbb', 4, '2026-01-21 10:03+00'),
  (3, 'Release2VoterAaaaaaaaaaa', 7, '2026-01-22 10:00+00'),
  (4, 'Release2VoterAaaaaaaaaaa', 9, '2026-01-23 10:00+00');
INSERT INTO poll_creation (id, client, created_at) VALUES (1, '192.0.2.7', '2026-01-10 12:00+00');
SELECT setval('question_id_seq', 4), setval('choice_id_seq', 10), setval('poll_creation_id_seq', 1);
"""


@pytest.fixture
def release_2_database(stoppable_database) -> Iterator[str]:
    """A new database at release 2's schema, holding RELEASE_2_ROWS; its URL."""
    admin = psycopg2.connect(stoppable_database.url)
    admin.autocommit = True
    try:
        admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("release_2")))
    finally:
        admin.close()
    url = pgserver.database_url(
        stoppable_database.url, {"user": pgserver.SUPERUSER, "password": "", "name": "release_2"}
    )
    engine = sa.create_engine(url, future=True)
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, RELEASE_2)
            conn.exec_driver_sql(RELEASE_2_ROWS, {"token_hash": tokens.hash_token(TOKEN)})
    finally:
        engine.dispose()
    yield url


def rows(url: str) -> dict[str, list[tuple]]:
    """Every row of release 2's tables, in release 2's columns."""
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return {
                table: [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY {columns}")
                ]
                for table, columns in TABLES.items()
            }
    finally:
        engine.dispose()


def init_db(monkeypatch, url: str) -> int:
    monkeypatch.setenv("POLLS_DATABASE_URL", url)
    return provision.main(["-c", str(TEST_CONFIG)])


async def test_init_db_upgrades_a_release_2_database_keeping_every_poll_ballot_and_vote(
    release_2_database, monkeypatch, capsys, aiohttp_client, vote, new_browser, vote_rows_match_counters
):
    before = rows(release_2_database)
    assert [len(found) for found in before.values()] == [4, 10, 7, 8, 1]
    assert init_db(monkeypatch, release_2_database) == 0
    assert capsys.readouterr().out == f"database at {RELEASE_2}, upgraded to {migrate.head()}\n"
    assert rows(release_2_database) == before
    assert vote_rows_match_counters(release_2_database)

    config = settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": release_2_database})
    client = await aiohttp_client(init_app(config=config))
    assert (await vote(new_browser(client), OPEN, 3)).status == 302
    old_voter = new_browser(client, headers={"Cookie": "polls_voter=Release2VoterCcccccccccc"})
    changed = await vote(old_voter, OPEN, 1)
    assert changed.status == 302 and changed.headers["Location"].endswith("?changed=1")
    assert (await vote(new_browser(client), MULTIPLE, 5, 6)).status == 302
    assert (await vote(new_browser(client), CLOSED, 8)).status == 409
    locked = new_browser(client, headers={"Cookie": "polls_voter=Release2VoterAaaaaaaaaaa"})
    refused = await vote(locked, LOCKED, 10)  # a locked poll keeps the first ballot
    assert refused.status == 302 and refused.headers["Location"].endswith("?already=1")
    manage = f"/poll/{OPEN}/manage/{TOKEN}"
    closed = await client.post(manage, data={"action": "close"}, allow_redirects=False)
    assert closed.status == 303
    assert "Voting closed" in await (await new_browser(client).get(f"/poll/{OPEN}")).text()
    assert vote_rows_match_counters(release_2_database)


def test_every_release_2_poll_becomes_a_poll_with_choices(release_2_database, monkeypatch):
    assert init_db(monkeypatch, release_2_database) == 0
    engine = sa.create_engine(release_2_database, future=True)
    try:
        with engine.connect() as conn:
            kinds = conn.exec_driver_sql("SELECT id, kind FROM question ORDER BY id").all()
    finally:
        engine.dispose()
    assert kinds == [(OPEN, "choices"), (MULTIPLE, "choices"), (CLOSED, "choices"), (LOCKED, "choices")]


async def test_release_2_votes_keep_no_rank_and_a_ranked_poll_takes_rankings_after_the_upgrade(
    release_2_database, monkeypatch, aiohttp_client, new_browser, vote, vote_rows_match_counters
):
    before = rows(release_2_database)
    assert init_db(monkeypatch, release_2_database) == 0
    assert rows(release_2_database) == before
    engine = sa.create_engine(release_2_database, future=True)
    try:
        with engine.begin() as conn:
            ranks = conn.exec_driver_sql("SELECT DISTINCT rank FROM vote").scalars().all()
            ranked_poll = conn.exec_driver_sql(
                "INSERT INTO question (question_text, kind) VALUES ('Rank the snacks', 'ranked') RETURNING id"
            ).scalar_one()
            choice_ids = (
                conn.exec_driver_sql(
                    "INSERT INTO choice (question_id, choice_text) VALUES (%(q)s, 'Nuts'), (%(q)s, 'Figs'),"
                    " (%(q)s, 'Dates') RETURNING id",
                    {"q": ranked_poll},
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert ranks == [None]  # every vote of release 2 as it was: no place in a ranking
    config = settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": release_2_database})
    client = await aiohttp_client(init_app(config=config))
    nuts, figs, dates = sorted(choice_ids)
    form = {f"rank-{figs}": "1", f"rank-{dates}": "2", f"rank-{nuts}": ""}
    answer = await new_browser(client).post(f"/poll/{ranked_poll}/rank", data=form, allow_redirects=False)
    assert answer.status == 302
    assert (await vote(new_browser(client), OPEN, 2)).status == 302
    assert set(before["vote"]) < set(rows(release_2_database)["vote"])
    assert vote_rows_match_counters(release_2_database)


async def test_a_release_2_database_upgraded_takes_reports_and_hides_polls_keeping_every_vote(
    release_2_database, monkeypatch, aiohttp_client, new_browser, vote_rows_match_counters, eventually
):
    # Migration 0008_moderation: every poll shown as before, none reported, none hidden; the
    # new tables take reports and moderation, and a hidden poll keeps its ballots and votes.
    before = rows(release_2_database)
    assert init_db(monkeypatch, release_2_database) == 0
    assert rows(release_2_database) == before
    engine = sa.create_engine(release_2_database, future=True)
    try:
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql("SELECT count(*) FROM question WHERE hidden_at IS NOT NULL").scalar()
                == 0
            )
            for table in ("report", "report_filing", "sign_in_failure", "admin_session", "audit_log"):
                assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0, table
        config = settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": release_2_database})
        client = await aiohttp_client(init_app(config=config))
        browser = new_browser(client)
        reported = await browser.post(f"/poll/{OPEN}/report", data={"reason": "spam"}, allow_redirects=False)
        assert reported.status == 303
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE question SET hidden_at = now() WHERE id = %s", (OPEN,))

        async def removed() -> bool:  # the change reaches the page cache by NOTIFY
            return (await browser.get(f"/poll/{OPEN}/results")).status == 410

        await eventually(removed)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE question SET hidden_at = NULL WHERE id = %s", (OPEN,))
    finally:
        engine.dispose()
    assert rows(release_2_database) == before


async def test_release_2_votes_become_yes_answers_and_date_polls_work_after_the_upgrade(
    release_2_database, monkeypatch, aiohttp_client, new_browser, vote_rows_match_counters
):
    assert init_db(monkeypatch, release_2_database) == 0
    engine = sa.create_engine(release_2_database, future=True)
    try:
        with engine.connect() as conn:
            answers = conn.exec_driver_sql("SELECT DISTINCT answer FROM vote").scalars().all()
            names = conn.exec_driver_sql("SELECT count(*) FROM ballot WHERE name IS NOT NULL").scalar()
            extra = conn.exec_driver_sql(
                "SELECT count(*) FROM choice"
                " WHERE if_need_be <> 0 OR day IS NOT NULL OR starts_at IS NOT NULL"
            ).scalar()
    finally:
        engine.dispose()
    assert (answers, names, extra) == (["yes"], 0, 0)
    config = settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": release_2_database})
    client = await aiohttp_client(init_app(config=config))
    body = {
        "kind": "dates",
        "question_text": "Upgraded?",
        "options": [{"date": "2030-03-01"}, {"date": "2030-03-02"}],
    }
    made = await client.post("/api/polls", json=body)
    assert made.status == 201
    question_id = (await made.json())["id"]
    poll = await (await client.get(f"/api/polls/{question_id}")).json()
    answers_by_id = {str(c["id"]): "if_need_be" for c in poll["choices"]}
    answered = await new_browser(client).post(
        f"/api/polls/{question_id}/vote", json={"name": "After", "answers": answers_by_id}
    )
    assert (await answered.json())["status"] == "counted"
    assert vote_rows_match_counters(release_2_database)


async def test_release_2_polls_vote_without_codes_until_their_maker_requires_them(
    release_2_database, monkeypatch, aiohttp_client, vote, new_browser, vote_rows_match_counters
):
    before = rows(release_2_database)
    assert init_db(monkeypatch, release_2_database) == 0
    assert rows(release_2_database) == before
    engine = sa.create_engine(release_2_database, future=True)
    try:
        with engine.connect() as conn:
            required = conn.exec_driver_sql("SELECT id, requires_code FROM question ORDER BY id").all()
            made = conn.exec_driver_sql("SELECT count(*) FROM voter_code").scalar_one()
    finally:
        engine.dispose()
    assert required == [(OPEN, False), (MULTIPLE, False), (CLOSED, False), (LOCKED, False)]
    assert made == 0
    config = settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": release_2_database})
    client = await aiohttp_client(init_app(config=config))
    manage = f"/poll/{OPEN}/manage/{TOKEN}"
    required = await client.post(manage, data={"action": "require_code"}, allow_redirects=False)
    assert required.status == 303
    assert (await vote(new_browser(client), OPEN, 3)).status == 403  # no code: refused
    page = await (await client.get(manage)).text()
    assert "3 ballots were cast before codes were required" in page  # and they stay counted
    assert rows(release_2_database) == before
    assert vote_rows_match_counters(release_2_database)
