"""Schemathesis against the running app: every operation in /api/openapi.json, with data that
fits the document and data that breaks it, gets no 5xx and an answer the document describes."""

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

# What must hold for every answer. Left out: `positive_data_acceptance` (a body of the right
# JSON types may still break the form's rules: a past closing time, two equal choices, or
# the hourly limit, each a documented 4xx) and the checks for authentication and for
# resources a request made (the API has no accounts, and deletes only the caller's own vote).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
]


@pytest.mark.slow
def test_every_operation_answers_as_documented_with_valid_and_invalid_data(
    app_process, make_question, vote_rows_match_counters, tmp_path: Path
):
    make_question("Published?", choices=("Yes", "No"))  # so that some generated ids exist
    make_question("Several?", choices=("A", "B", "C"), multiple=True)
    make_question("Ranked?", choices=("A", "B", "C"), kind="ranked")
    app = app_process()
    app.wait_serving()
    # Read from the running app, then given as a file: schemathesis leaves out the operation
    # at the address it loaded the document from, and that one is tested too.
    document = tmp_path / "openapi.json"
    with urllib.request.urlopen(f"{app.url}/api/openapi.json", timeout=10) as response:
        document.write_bytes(response.read())
    command = [
        str(Path(sys.executable).with_name("schemathesis")),  # installed beside pytest (test extras)
        "run",
        str(document),
        "--url",
        app.url,
        "--mode",
        "all",  # positive and negative data
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "30",
        "--seed",
        "13",
        "--checks",
        ",".join(CHECKS),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "too_slow",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(tmp_path / "events.ndjson"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    tested = set(re.findall(r'"label":"([^"]+)"', (tmp_path / "events.ndjson").read_text()))
    operations = {
        "GET /api/polls",
        "POST /api/polls",
        "GET /api/polls/{question_id}",
        "GET /api/openapi.json",
    }
    assert tested == {
        *operations,
        "POST /api/polls/{question_id}/vote",
        "DELETE /api/polls/{question_id}/vote",
    }, report
    assert vote_rows_match_counters()  # its votes: none lost, doubled or half-written
    # No request reached the error middleware's catch-all (it logs "error handling ...").
    # aiohttp's own parser logs the probe schemathesis sends with a NUL in a header, and
    # answers it 400 itself: not an error of the app's.
    assert "error handling" not in app.log(), app.log()[-4000:]
