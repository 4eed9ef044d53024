"""bench/run.py drives the API and export scenarios, and its database checks catch lost or
doubled writes; a short run on a database of its own (its seeding resets that database).
bench/watchers.py counts a vote some watcher never shows as an error, and runs through
PostgreSQL ending the app's connections. The bench modules share code without importing in a
circle."""

import ast
import asyncio
import graphlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.store import pgserver, provision
from aiohttpdemo_polls.store.votes import VoteNotCounted, VoteOutcome
from bench import load, run, watchers

BENCH_DATABASE = "aiohttpdemo_polls_bench_test"
WATCHERS_DATABASE = "aiohttpdemo_polls_watchers_test"  # its run ends every connection to it
SCENARIOS = [
    "openapi",
    "export_csv",
    "export_json",
    "export_ballots",
    "api_vote",
    "api_vote_hot",
    "api_create",
    "date_answer",
]
WRITES = ["api_vote", "api_vote_hot", "api_create", "date_answer"]


def database_beside(database_url: str, name: str) -> str:
    """A database `name` beside the tests' own on the same server, for a benchmark to use
    as it likes (reset it, end every connection to it)."""
    url = sa.engine.make_url(database_url).set(database=name)
    admin = os.environ.get("POLLS_TEST_DATABASE_URL") or pgserver.running_url(
        settings.embedded_dir(
            settings.load(settings.PROJECT_ROOT / "config" / "polls_test.yaml", {})
        ).resolve()
    )
    bench_url = url.render_as_string(hide_password=False)
    provision.ensure_role_and_database(admin, bench_url)
    return bench_url


@pytest.fixture
def bench_database_url(database_url: str) -> str:
    """A database beside the tests' own on the same server, which the run may reset."""
    return database_beside(database_url, BENCH_DATABASE)


def table_rows(results: str) -> dict[str, list[str]]:
    """The results table's app rows by their scenario label: the cells after the label."""
    rows = {}
    for line in results.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| app,"):
            rows[cells[1]] = cells[2:]
    return rows


def bench_imports(path: Path) -> set[str]:
    """The bench modules `path` imports, those a function imports when it runs included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "bench":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("bench.")}
    return found


def test_bench_modules_import_no_circle_and_share_code_outside_the_scripts():
    """What several benchmarks use lives in a module of its own (bench/load.py, bench/processes.py),
    not in the script bench/run.py, which no other bench module imports."""
    imports = {path.stem: bench_imports(path) for path in (settings.PROJECT_ROOT / "bench").glob("*.py")}
    graphlib.TopologicalSorter(imports).prepare()  # raises CycleError on a circle
    assert [name for name, found in imports.items() if "run" in found] == []


VOTE_BEFORE = {
    "counted": 10,
    "ballots": 10,
    "rows": 10,
    "mismatched": 0,
    "polls": 5,
    "choices": 15,
    "choices_of_polls": 3,
}


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
        ("date_answer", 4, {"ballots": 14, "rows": 22}, True),  # a row of 3 answers each
        ("date_answer", 4, {"ballots": 14, "rows": 21}, False),  # an answer missing
        ("date_answer", 4, {"ballots": 15, "rows": 25}, False),  # a row saved but not answered
        ("date_answer", 4, {"ballots": 14, "rows": 22, "mismatched": 1}, False),  # counter ≠ rows
    ],
)
def test_write_check_holds_only_when_the_database_has_exactly_the_answered_writes(
    kind: str, answered: int, after: dict[str, int], exact: bool
) -> None:
    ok, line = load.write_check(
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


class Batcher:
    """Stands in for the app's vote writer: answers every vote with `outcome`."""

    def __init__(self, outcome: VoteOutcome | None) -> None:
        self.outcome = outcome  # None: the vote raises VoteNotCounted

    async def cast(self, question_id: int, choice_ids: list[int], voter: str) -> VoteOutcome:
        if self.outcome is None:
            raise VoteNotCounted("database timeout")
        return self.outcome


def receive(watcher: watchers.Watcher, total: int) -> None:
    watcher.frames.append((time.perf_counter(), json.dumps({"question_id": 1, "total": total}).encode()))
    watcher.board.frames += 1
    watcher.board.changed()


async def test_a_watcher_showing_only_the_old_total_has_missed_the_vote(monkeypatch) -> None:
    monkeypatch.setattr(watchers, "TIMEOUT", 0.5)
    board = watchers.Board()
    crowd = [watchers.Watcher("127.0.0.1", "/poll/1/live", board) for _ in range(3)]
    votes = watchers.Votes("unused", 1, 1, crowd, board, total=5)

    async def frames() -> None:
        await asyncio.sleep(0.05)
        receive(crowd[0], 6)
        receive(crowd[1], 6)
        receive(crowd[2], 5)  # a resync after a reconnect, read before the vote committed

    sending = asyncio.create_task(frames())
    assert await votes.vote(Batcher(VoteOutcome.COUNTED)) is None
    await sending
    assert (votes.errors.missed, votes.errors.total) == (1, 1)

    receive(crowd[2], 6)  # late: still missed; the next vote is timed as any other

    async def everyone_sees_7() -> None:
        await asyncio.sleep(0.05)
        for watcher in crowd:
            receive(watcher, 7)

    sending = asyncio.create_task(everyone_sees_7())
    committed, last = await votes.vote(Batcher(VoteOutcome.COUNTED))
    await sending
    assert last > committed
    assert votes.errors.total == 1


@pytest.mark.parametrize("outcome", [VoteOutcome.ALREADY_VOTED, None])
async def test_a_vote_not_counted_is_an_error(outcome: VoteOutcome | None) -> None:
    board = watchers.Board()
    votes = watchers.Votes("unused", 1, 1, [watchers.Watcher("127.0.0.1", "/", board)], board, total=5)
    assert await votes.vote(Batcher(outcome)) is None
    assert (votes.errors.not_counted, votes.errors.total, votes.total) == (1, 1, 5)


@pytest.mark.slow
def test_watchers_bench_times_votes_through_postgresql_ending_the_app_connections(
    database_url: str, tmp_path: Path
) -> None:
    table = tmp_path / "watchers.md"
    argv = [sys.executable, "bench/watchers.py", "--watchers", "50", "--votes", "4", "--markdown", str(table)]
    env = {**os.environ, "POLLS_DATABASE_URL": database_beside(database_url, WATCHERS_DATABASE)}
    done = subprocess.run(
        argv, cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr  # 1 when any error was counted

    row = next(line for line in table.read_text().splitlines() if line.startswith("| 50 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    recovery, ended, errors = cells[8:11]
    assert recovery.endswith(" ms"), row  # the vote after the cut reached every watcher
    assert int(ended) >= 2, row  # at least the app's pool and its listener
    assert errors == "0", row


@pytest.mark.slow
def test_bench_reports_a_ranked_polls_counting_time_and_results_page_rate(
    bench_database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "bench/run.py", "--duration", "1", "--repeat", "1", "--connections", "8"]
    argv += ["--warmup", "0", "--polls", "5", "--only", "ranked_results", "--ranked-ballots", "3000"]
    argv += ["--out", str(out), "--python-load"]
    env = {**os.environ, "POLLS_DATABASE_URL": bench_database_url}
    done = subprocess.run(
        argv, cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = (out / "results.md").read_text()
    _conns, rps, *_ = table_rows(results)[run.PAGE_SCENARIOS["ranked_results"]]
    assert float(rps.replace(",", "")) > 0, results
    counting = re.search(
        r"Ranked poll \(ranked_results\): 3,000 ballots over 8 choices, .* counted \(runoff.count\) (\d+) ms",
        results,
    )
    assert counting, results
