"""What the benchmarks do to the app that production does to it, and where they look for harm:
PostgreSQL ending the app's connections (a failover, a restart or an idle timeout does), and
the lines an app's log holds when something failed unnoticed (issue 19).

Shared by bench/watchers.py and bench/soak.py; it imports neither.
"""

import time
from collections import Counter

import psycopg2

# Each means a fault nobody handled: an exception escaped (or a task died with one), or aiopg
# met a descriptor above 1023 without aiohttpdemo_polls/aiopg_fixes.py.
LOG_ERRORS = ("Traceback", "Task exception was never retrieved", "filedescriptor out of range")

_END = (
    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)
_ALIVE = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"


def end_connections(url: str, timeout: float = 10.0) -> int:
    """End every other client connection to the database of `url`; return how many, once their
    backends are gone (pg_terminate_backend only signals them), so recovery is timed from then."""
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(_END)
            pids = [pid for pid, signalled in cur.fetchall() if signalled]
            deadline = time.monotonic() + timeout
            cur.execute(_ALIVE, (pids,))
            while cur.fetchone()[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL's backends did not end within {timeout:g} s")
                time.sleep(0.01)
                cur.execute(_ALIVE, (pids,))
    finally:
        conn.close()
    return len(pids)


def log_errors(text: str) -> Counter[str]:
    """How often each of LOG_ERRORS occurs in an app's log (none: an empty Counter)."""
    return Counter({error: text.count(error) for error in LOG_ERRORS if error in text})


def error_lines(text: str, limit: int = 20) -> str:
    """The log's lines around each error, for a report that shows what happened."""
    lines = text.splitlines()
    marks = [n for n, line in enumerate(lines) if any(error in line for error in LOG_ERRORS)]
    shown: list[str] = []
    for n in marks[:3]:
        shown += [*lines[max(0, n - 2) : n + limit // 3], "..."]
    return "\n".join(shown)
