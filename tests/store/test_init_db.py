"""Database setup (init_db.py, `init-db`): creates only what is missing, --reset starts again,
--polls adds many."""

import select
import subprocess
import sys

import psycopg2
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.store import migrate, provision, schema


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("question", "choice", "ballot", "vote")
        }


def run(monkeypatch, database_url, *args) -> int:
    monkeypatch.setenv("POLLS_DATABASE_URL", database_url)
    return provision.main(["-c", "config/polls_test.yaml", *args])


def test_init_db_adds_the_sample_polls_once(monkeypatch, database_url, sync_engine, capsys):
    assert run(monkeypatch, database_url) == 0
    first = counts(sync_engine)
    assert run(monkeypatch, database_url) == 0
    assert counts(sync_engine) == first
    assert first["question"] == len(provision.SAMPLE_POLLS)
    with sync_engine.connect() as conn:
        texts = (
            conn.execute(sa.select(schema.question.c.question_text).order_by(schema.question.c.id))
            .scalars()
            .all()
        )
        choices = (
            conn.execute(
                sa.select(schema.choice.c.choice_text)
                .where(schema.choice.c.question_id == 1)
                .order_by(schema.choice.c.id)
            )
            .scalars()
            .all()
        )
    assert texts[0] == "What's new?"
    assert choices == ["Not much", "The sky", "Just hacking again"]


def test_sample_data_has_open_closed_multiple_and_scheduled_polls(monkeypatch, database_url, sync_engine):
    run(monkeypatch, database_url)
    with sync_engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.question.c.multiple, schema.closed.label("closed"), schema.published.label("published")
            )
        ).all()
    assert any(r.published and not r.closed and not r.multiple for r in rows)
    assert any(r.closed for r in rows)
    assert any(r.multiple for r in rows)
    assert any(not r.published for r in rows)


def test_sample_votes_match_vote_rows(monkeypatch, database_url, vote_rows_match_counters):
    run(monkeypatch, database_url)
    assert vote_rows_match_counters()


def test_reset_drops_and_recreates(monkeypatch, database_url, sync_engine, make_question):
    run(monkeypatch, database_url)
    make_question("Extra poll?")
    assert counts(sync_engine)["question"] == len(provision.SAMPLE_POLLS) + 1
    assert run(monkeypatch, database_url, "--reset") == 0
    assert counts(sync_engine)["question"] == len(provision.SAMPLE_POLLS)


def test_polls_option_adds_generated_polls_with_progress(monkeypatch, database_url, sync_engine, capsys):
    run(monkeypatch, database_url)
    before = counts(sync_engine)
    assert run(monkeypatch, database_url, "--polls", "7001") == 0
    after = counts(sync_engine)
    assert after["question"] - before["question"] == 7001
    assert after["choice"] - before["choice"] == 4 * 7001
    assert "generated 7001/7001 polls" in capsys.readouterr().out


def test_poll_results_view_reads_well_in_psql(monkeypatch, database_url, sync_engine):
    run(monkeypatch, database_url)
    with sync_engine.connect() as conn:
        rows = conn.execute(sa.text("TABLE poll_results")).mappings().all()
    first = [r for r in rows if r["question"] == "What's new?"]
    assert [r["choice"] for r in first] == ["Not much", "The sky", "Just hacking again"]
    assert sum(r["percent"] for r in first) == pytest.approx(100, abs=0.2)


@pytest.mark.parametrize(
    "command", [["init_db.py"], ["-m", "aiohttpdemo_polls", "init-db"]], ids=["init_db.py", "init-db"]
)
def test_script_and_init_db_command_set_up_the_same_database(database_url, sync_engine, command):
    env = {"PATH": "/usr/bin:/bin", "POLLS_DATABASE_URL": database_url}
    args = [sys.executable, *command, "-c", "config/polls_test.yaml", "--polls", "3"]
    result = subprocess.run(
        args, cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"added {len(provision.SAMPLE_POLLS)} sample polls" in result.stdout
    assert "generated 3/3 polls" in result.stdout
    assert counts(sync_engine)["question"] == len(provision.SAMPLE_POLLS) + 3


def test_init_db_command_rejects_a_negative_poll_count():
    result = subprocess.run(
        [sys.executable, "-m", "aiohttpdemo_polls", "init-db", "--polls", "-1"],
        cwd=settings.PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --polls: must not be negative"


def notify_triggers(engine) -> list[str]:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text(
                    "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal AND c.relname IN ('question', 'choice', 'ballot', 'vote') "
                    "ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )


def test_init_db_adds_the_notifying_triggers_to_a_database_made_before_them(
    monkeypatch, database_url, sync_engine, capsys
):
    with sync_engine.begin() as conn:  # the schema as release 1.0.0 made it: no triggers, no version
        migrate.drop_all(conn)
        migrate.upgrade(conn, "0001_release_1_0")
        conn.execute(sa.text("DROP TABLE alembic_version"))
    try:
        assert notify_triggers(sync_engine) == []
        assert run(monkeypatch, database_url) == 0
        added = notify_triggers(sync_engine)
        # INSERT, UPDATE, DELETE and TRUNCATE on each of the four tables.
        assert len(added) == 16 and all("FOR EACH STATEMENT" in t for t in added)
        assert f"database at 0001_release_1_0, upgraded to {migrate.head()}" in capsys.readouterr().out
        assert run(monkeypatch, database_url) == 0
        assert notify_triggers(sync_engine) == added
        assert capsys.readouterr().out == f"database already at {migrate.head()}\n"
        listener = psycopg2.connect(database_url)
        try:
            listener.autocommit = True
            listener.cursor().execute(f"LISTEN {schema.CHANNEL}")
            with sync_engine.begin() as conn:
                conn.execute(sa.text("UPDATE choice SET votes = votes + 1 WHERE question_id = 1"))
            assert select.select([listener], [], [], 10)[0], "no notice came"
            listener.poll()
            assert [n.payload for n in listener.notifies] == ["1"]
        finally:
            listener.close()
    finally:
        with sync_engine.begin() as conn:  # whatever happened, the next test has the whole schema
            migrate.drop_all(conn)
            migrate.upgrade(conn)
