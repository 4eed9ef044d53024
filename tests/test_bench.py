"""bench/run.py drives the API and export scenarios, and its database checks catch lost or
doubled writes; a short run on a database of its own (its seeding resets that database)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import pgserver, settings, setup_db
from bench import run

BENCH_DATABASE = "aiohttpdemo_polls_bench_test"
SCENARIOS = [
    "openapi",
    "export_csv",
    "export_json",
    "export_ballots",
    "api_vote",
    "api_vote_hot",
    "api_create",
]
WRITES = ["api_vote", "api_vote_hot", "api_create"]


@pytest.fixture
def bench_database_url(database_url: str) -> str:
    """A database beside the tests' own on the same server, which the run may reset."""
    url = sa.engine.make_url(database_url).set(database=BENCH_DATABASE)
    admin = os.environ.get("POLLS_TEST_DATABASE_URL") or pgserver.running_url(
        settings.embedded_dir(
            settings.load(settings.PROJECT_ROOT / "config" / "polls_test.yaml", {})
        ).resolve()
    )
    bench_url = url.render_as_string(hide_password=False)
    setup_db.ensure_role_and_database(admin, bench_url)
    return bench_url


def table_rows(results: str) -> dict[str, list[str]]:
    """The results table's app rows by their scenario label: the cells after the label."""
    rows = {}
    for line in results.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| app,"):
            rows[cells[1]] = cells[2:]
    return rows


VOTE_BEFORE = {"counted": 10, "ballots": 10, "rows": 10, "mismatched": 0, "polls": 5, "choices": 15}


@pytest.mark.parametrize(
    ("kind", "answered", "after", "exact"),
    [
        ("api_vote", 4, {"counted": 14, "ballots": 14}, True),
        ("api_vote", 5, {"counted": 14, "ballots": 14}, False),  # an answered vote lost
        ("api_vote", 4, {"counted": 15, "ballots": 15}, False),  # a vote counted but not answered
        ("api_vote", 4, {"counted": 14, "ballots": 13}, False),  # a ballot missing
        ("form_vote", 4, {"counted": 14, "ballots": 14, "mismatched": 1}, False),  # counter ≠ rows
        ("api_create", 3, {"polls": 8, "choices": 24}, True),
        ("api_create", 3, {"polls": 9, "choices": 27}, False),  # a poll made twice
        ("api_create", 3, {"polls": 8, "choices": 21}, False),  # a poll without its choices
    ],
)
def test_write_check_holds_only_when_the_database_has_exactly_the_answered_writes(
    kind: str, answered: int, after: dict[str, int], exact: bool
) -> None:
    ok, line = run.write_check(
        kind, {"ndone": answered, "nwrite": answered}, VOTE_BEFORE, VOTE_BEFORE | after
    )
    assert ok is exact
    assert line.startswith("MISMATCH") is not exact


@pytest.mark.slow
@pytest.mark.parametrize("generator", [[], ["--python-load"]], ids=["wrk", "python"])
def test_bench_measures_api_writes_and_exports_with_exact_database_checks(
    bench_database_url: str, tmp_path: Path, generator: list[str], vote_rows_match_counters
) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "bench/run.py", "--duration", "1", "--repeat", "1", "--connections", "8"]
    argv += ["--warmup", "0", "--polls", "20", "--only", ",".join(SCENARIOS), "--out", str(out), *generator]
    env = {**os.environ, "POLLS_DATABASE_URL": bench_database_url}
    done = subprocess.run(
        argv, cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr  # 1 when a database check failed

    results = (out / "results.md").read_text()
    loadgen = "wrk" if shutil.which("wrk") and not generator else "aiohttp client"
    assert f"load generator: {loadgen};" in results
    rows = table_rows(results)
    labels = {name: (run.PAGE_SCENARIOS | run.WRITE_SCENARIOS)[name] for name in SCENARIOS}
    assert set(rows) == set(labels.values()), results
    for name, label in labels.items():
        _conns, rps, _ratio, _p50, _p99, errors, _rss, check = rows[label]
        assert float(rps.replace(",", "")) > 0, (name, results)
        assert errors == "0", (name, results)  # every GET of an export answered 200, with the token
        assert check == ("exact in all runs" if name in WRITES else ""), (name, results)

    # Independently of the script's own check: the polls it says were made are in the
    # database, the exports' poll has its ballots, and every counter equals its vote rows.
    made = int(re.search(r"201s (\d+) = polls made", done.stdout)[1])
    engine = sa.create_engine(bench_database_url, future=True)
    try:
        with engine.connect() as conn:
            polls = conn.execute(
                sa.text("SELECT count(*) FROM question WHERE question_text LIKE 'Bench poll %'")
            )
            assert polls.scalar_one() == made > 0
            ballots = conn.execute(
                sa.text(
                    "SELECT count(*) FROM ballot b JOIN question q ON q.id = b.question_id"
                    " WHERE q.question_text = 'Where shall we eat? (exports)'"
                )
            )
            assert ballots.scalar_one() == run.EXPORT_BALLOTS
    finally:
        engine.dispose()
    assert vote_rows_match_counters(bench_database_url)
