"""`python -m aiohttpdemo_polls purge [--dry-run]`: the retention job's deletion, now."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.store import schema


def purge(database_url: str, *args: str, days: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "POLLS_DATABASE_URL": database_url}
    if days is not None:
        env["POLLS_RETENTION_CLOSED_DAYS"] = days
    return subprocess.run(
        [sys.executable, "-m", "aiohttpdemo_polls", "-c", "config/polls_test.yaml", "purge", *args],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def questions(sync_engine) -> list[str]:
    with sync_engine.connect() as conn:
        return sorted(conn.execute(sa.select(schema.question.c.question_text)).scalars())


def closed(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_purge_dry_run_lists_what_would_go_and_deletes_nothing(database_url, make_question, sync_engine):
    old = make_question("Office party theme?", days=-400, closed_at=datetime(2025, 1, 15, 9, 30, tzinfo=UTC))
    make_question("Still open?", days=-400)
    result = purge(database_url, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{old['id']}\tOffice party theme?\tclosed since 2025-01-15 09:30 UTC",
        "1 polls closed over 180 days would be deleted",
    ]
    assert questions(sync_engine) == ["Office party theme?", "Still open?"]


def test_purge_deletes_the_polls_closed_longer_than_the_setting_now(
    database_url, make_question, add_votes, sync_engine, vote_rows_match_counters
):
    old = make_question("Closed 40 days ago", days=-400, closed_at=closed(40))
    add_votes(old["id"], {old["choices"][0]: 3})
    make_question("Closed 20 days ago", days=-400, closed_at=closed(20))
    result = purge(database_url, days="30")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deleted 1 polls closed over 30 days\n"
    assert questions(sync_engine) == ["Closed 20 days ago"]
    assert vote_rows_match_counters()
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ballot")).scalar_one() == 0


def test_purge_with_zero_days_keeps_everything(database_url, make_question, sync_engine):
    make_question("Ancient", days=-4000, closed_at=closed(3000))
    result = purge(database_url, days="0")
    assert result.returncode == 0, result.stderr
    assert "every poll is kept" in result.stdout
    assert questions(sync_engine) == ["Ancient"]


def test_dry_run_without_purge_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "aiohttpdemo_polls", "dsn", "--dry-run"],
        cwd=settings.PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --dry-run goes with purge only"
