"""The load the benchmarks put on the app with wrk, and the database's account of it: shared
by bench/run.py, bench/soak.py and bench/hosts.py, and importing none of them.

wrk runs the Lua scripts here: every one ends with LUA_DONE's summary line; writes (votes,
new polls) come from LUA_WRITE, which stops so that every write sent is answered. The
database's vote state, read before and after, says whether exactly the writes answered as
done were kept.
"""

import asyncio
import json
import random
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

WRK = shutil.which("wrk")
FORM = "application/x-www-form-urlencoded"
NEW_POLL_CHOICES = ["Yes", "No", "Maybe"]

# --- wrk scripts -------------------------------------------------------------------------
# Every script ends with DONE, which prints one JSON line the script parses. Counters a
# thread keeps are globals so that `done` can read them with thread:get().
LUA_DONE = r"""
local threads = {}
function setup(thread)
  -- A global in the thread's own Lua state (a local of this chunk would shadow it there).
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end
function done(summary, latency, requests)
  local sums = {ndone = 0, nwrite = 0, nother = 0, n5xx = 0, n503 = 0}
  for _, t in ipairs(threads) do
    for name, _ in pairs(sums) do sums[name] = sums[name] + (t:get(name) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "status": %d, "ndone": %d, "nwrite": %d, "nother": %d, ' ..
    '"n5xx": %d, "n503": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status, sums.ndone, sums.nwrite, sums.nother,
    sums.n5xx, sums.n503))
end
"""

# Writes (votes, new polls): each request is a new voter or maker (no cookies); `write()`
# (WRITES) makes it. When the runner creates STOPFILE the threads stop writing, send cheap
# GET / (an HTML 200, which no write answers: a form vote answers 302, the API JSON) while
# their last writes come back, then stop and leave STOPFILE.<n>; the runner then ends wrk
# (SIGINT). So every write sent is answered and counted, and "writes answered as done" can
# be compared exactly with the database.
LUA_RANDOM_PAGE = r"""
local lo, hi, prefix, suffix = %(lo)d, %(hi)d, "%(prefix)s", "%(suffix)s"
function init(args) math.randomseed(os.time() * 7919 + (thread_no or 0)) end
function request() return wrk.format("GET", prefix .. math.random(lo, hi) .. suffix) end
"""

LUA_WRITE = r"""
local stopfile = "%(stopfile)s"
local origin = "%(origin)s"
local tail
local stopping, stopped = false, false
local checks, calls = 0, 0
ndone, nwrite, nother, n5xx, n503, sent = 0, 0, 0, 0, 0, 0
%(write)s
function init(args)
  math.randomseed(os.time() * 7919 + (thread_no or 0))
  tail = wrk.format("GET", "/", {})
end
function request()
  calls = calls + 1
  if not stopping then
    checks = checks + 1
    if checks %% 32 == 0 then
      local f = io.open(stopfile, "r")
      if f then f:close(); stopping = true end
    end
  end
  if stopping then return tail end
  -- wrk calls request() once on the first thread before starting, only to inspect it.
  if not (calls == 1 and thread_no == 1) then sent = sent + 1 end
  return write()
end
function response(status, headers, body)
  if status == 200 and string.find(headers["Content-Type"] or "", "text/html", 1, true) == 1 then
    nother = nother + 1
  else
    nwrite = nwrite + 1
    if status == %(done)d then ndone = ndone + 1 end
    if status >= 500 then n5xx = n5xx + 1 end
    if status == 503 then n503 = n503 + 1 end
  end
  if stopping and not stopped and nwrite == sent then
    -- Every write this thread sent is answered: say so (the runner then ends wrk) and stop.
    stopped = true
    local f = io.open(stopfile .. "." .. thread_no, "w")
    f:close()
    wrk.thread:stop()
  end
end
"""


@dataclass(frozen=True)
class Write:
    """One kind of write: the status that says it was done, and how wrk's Lua (`write()`,
    with `targets` and `origin` in scope) and the Python generator make one."""

    done: int
    lua: str
    python: Callable[[Sequence[tuple[int, int]], int], "Request"]


Request = tuple[str, str, dict[str, Any]]  # method, path, keyword arguments for aiohttp's request


def _form_vote(targets: Sequence[tuple[int, int]], n: int) -> Request:
    q, c = random.choice(targets)
    return "POST", f"/poll/{q}/vote", {"data": {"choice": str(c)}}


def _api_vote(targets: Sequence[tuple[int, int]], n: int) -> Request:
    q, c = random.choice(targets)
    return "POST", f"/api/polls/{q}/vote", {"json": {"choices": [c]}}


def _api_create(targets: Sequence[tuple[int, int]], n: int) -> Request:
    return "POST", "/api/polls", {"json": {"question_text": f"Bench poll {n}", "choices": NEW_POLL_CHOICES}}


# A date poll's answers, in turn: every new participant answers every option.
DATE_ANSWERS = ("yes", "if_need_be", "no")


def _date_answer(targets: Sequence[tuple[int, int]], n: int) -> Request:
    """A new participant's row for the date poll whose options are `targets` (poll, option)."""
    data = [("name", f"Bench {n}")]
    data += [(f"answer-{c}", DATE_ANSWERS[(n + i) % 3]) for i, (_, c) in enumerate(targets)]
    return "POST", f"/poll/{targets[0][0]}/answer", {"data": data}


_JSON_LUA = '{["Content-Type"] = "application/json", ["Origin"] = origin}'
WRITES = {
    "form_vote": Write(
        302,
        f"""
function write()
  local t = targets[math.random(#targets)]
  return wrk.format("POST", "/poll/" .. t[1] .. "/vote",
    {{["Content-Type"] = "{FORM}", ["Origin"] = origin}}, "choice=" .. t[2])
end""",
        _form_vote,
    ),
    "api_vote": Write(
        200,
        f"""
function write()
  local t = targets[math.random(#targets)]
  return wrk.format("POST", "/api/polls/" .. t[1] .. "/vote", {_JSON_LUA}, '{{"choices": [' .. t[2] .. ']}}')
end""",
        _api_vote,
    ),
    "api_create": Write(
        201,
        f"""
local made = 0
function write()
  made = made + 1
  return wrk.format("POST", "/api/polls", {_JSON_LUA},
    '{{"question_text": "Bench poll ' .. (thread_no or 0) .. '-' .. made .. '", ' ..
    '"choices": {json.dumps(NEW_POLL_CHOICES)}}}')
end""",
        _api_create,
    ),
    # A date poll answered through the grid's form: a name and an answer for every option.
    "date_answer": Write(
        303,
        f"""
local answers = {{"yes", "if_need_be", "no"}}
local n = 0
function write()
  n = n + 1
  local body = "name=Bench+" .. (thread_no or 0) .. "-" .. n
  for i, t in ipairs(targets) do
    body = body .. "&answer-" .. t[2] .. "=" .. answers[((n + i) % 3) + 1]
  end
  return wrk.format("POST", "/poll/" .. targets[1][1] .. "/answer",
    {{["Content-Type"] = "{FORM}", ["Origin"] = origin}}, body)
end""",
        _date_answer,
    ),
}


def lua_writes(kind: str, stopfile: Path, origin: str, targets: Sequence[tuple[int, int]] = ()) -> str:
    """The wrk script sending `kind` writes (WRITES) until `stopfile` appears."""
    write = "local targets = {" + ",".join(f"{{{q},{c}}}" for q, c in targets) + "}\n" + WRITES[kind].lua
    return LUA_WRITE % {"stopfile": stopfile, "origin": origin, "write": write, "done": WRITES[kind].done}


# --- the database ------------------------------------------------------------------------


@dataclass
class Data:
    """What the seeded database holds that the scenarios need."""

    url: str
    poll_ids: list[int]
    poll_choices: list[tuple[int, int]]  # (poll, choice) pairs of open single-choice polls
    hot: tuple[int, int]


def load_data(url: str) -> Data:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT q.id, c.id FROM question q JOIN choice c ON c.question_id = q.id "
            "WHERE q.question_text LIKE 'Generated poll #%' ORDER BY q.id, c.id"
        )
        pairs = cur.fetchall()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS bench_one_row (id int PRIMARY KEY, votes bigint NOT NULL DEFAULT 0)"
        )
        cur.execute("INSERT INTO bench_one_row (id) VALUES (1) ON CONFLICT DO NOTHING")
    conn.close()
    poll_ids = sorted({q for q, _ in pairs})
    return Data(url=url, poll_ids=poll_ids, poll_choices=pairs, hot=pairs[0])


# A choice whose counters differ from its `vote` rows: `votes` counts the 'yes' rows (every
# vote of a choices poll), `if_need_be` a date poll's 'if_need_be' rows.
_MISMATCHED = (
    "(c.votes <> (SELECT count(*) FROM vote v WHERE v.question_id = c.question_id"
    " AND v.choice_id = c.id AND v.answer = 'yes')"
    " OR c.if_need_be <> (SELECT count(*) FROM vote v WHERE v.question_id = c.question_id"
    " AND v.choice_id = c.id AND v.answer = 'if_need_be'))"
)


def vote_state(url: str, poll_ids: list[int]) -> dict[str, int]:
    """Counters and rows for these polls, the number of choices whose counter is wrong, and
    how many polls and choices the whole database holds (for poll making)."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM question), (SELECT count(*) FROM choice)")
        polls, choices = cur.fetchone()
        cur.execute(
            "SELECT coalesce(sum(votes + if_need_be), 0) FROM choice WHERE question_id = ANY(%s)", (poll_ids,)
        )
        counted = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM vote WHERE question_id = ANY(%s)", (poll_ids,))
        rows = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM ballot WHERE question_id = ANY(%s)", (poll_ids,))
        ballots = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM choice WHERE question_id = ANY(%s)", (poll_ids,))
        choices_of_polls = cur.fetchone()[0]
        cur.execute(
            f"SELECT count(*) FROM choice c WHERE c.question_id = ANY(%s) AND {_MISMATCHED}", (poll_ids,)
        )
        mismatched = cur.fetchone()[0]
    conn.close()
    return {
        "counted": int(counted),
        "rows": rows,
        "ballots": ballots,
        "mismatched": mismatched,
        "polls": polls,
        "choices": choices,
        "choices_of_polls": choices_of_polls,
    }


def mismatched_everywhere(url: str) -> int:
    """Choices, in the whole database, whose counter differs from their `vote` rows."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM choice c WHERE {_MISMATCHED}")
        mismatched = cur.fetchone()[0]
    conn.close()
    return mismatched


def settled_vote_state(url: str, poll_ids: list[int], timeout: float = 10) -> dict[str, int]:
    """The vote state once it stops changing (votes still in flight have landed)."""
    state = vote_state(url, poll_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = vote_state(url, poll_ids)
        if again == state:
            return state
        state = again
    return state


# --- wrk ---------------------------------------------------------------------------------


async def wrk(
    url: str,
    connections: int,
    duration: float,
    lua: str,
    tmp: Path,
    done_when: list[Path] | None = None,
    headers: Sequence[str] = (),
) -> dict[str, Any]:
    """Run wrk (2 threads); with `done_when`, end it early (SIGINT) once all those files exist.

    `headers` ("Name: value") go on every request whose script names no headers of its own."""
    script = tmp / f"s{random.randrange(1 << 30)}.lua"
    script.write_text(LUA_DONE + lua)
    argv = [
        WRK,
        "-t2",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        *(argument for header in headers for argument in ("-H", header)),
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )

    async def end_early() -> None:
        while not all(p.exists() for p in done_when or []):
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # wrk then stops and prints its summary

    ender = asyncio.create_task(end_early()) if done_when else None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=duration + 60)
    finally:
        if ender:
            ender.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError(f"wrk gave no result:\n{out.decode(errors='replace')}")


def errors_of(result: dict[str, Any]) -> int:
    return sum(result[k] for k in ("connect", "read", "write", "timeout", "status"))


def write_check(
    kind: str, result: dict[str, Any], before: dict[str, int], after: dict[str, int]
) -> tuple[bool, str]:
    """Whether the database gained exactly the writes answered as done (WRITES), and the line
    saying so: a vote's counter, ballot and `vote` row each, a date poll's row with an answer
    for every option, or a poll with its choices."""
    done, status = result["ndone"], WRITES[kind].done
    if kind == "api_create":
        made = after["polls"] - before["polls"]
        choices = after["choices"] - before["choices"]
        ok = made == done and choices == made * len(NEW_POLL_CHOICES) and result["nwrite"] >= done
        if ok:
            return True, f"{status}s {done} = polls made {made}"
        return False, f"MISMATCH: {status}s {done}, polls made {made}, choices added {choices}"
    counted = after["counted"] - before["counted"]
    ballots = after["ballots"] - before["ballots"]
    if kind == "date_answer":  # a row each: a ballot, and a `vote` row for every option
        rows = after["rows"] - before["rows"]
        options = before["choices_of_polls"]
        ok = (
            ballots == done
            and rows == done * options
            and after["mismatched"] == 0
            and result["nwrite"] >= done
        )
        if ok:
            return True, f"{status}s {done} = rows {ballots} ({rows} answers)"
        return False, (
            f"MISMATCH: {status}s {done}, rows {ballots}, answers {rows} (of {options} options each), "
            f"counters≠rows {after['mismatched']}"
        )
    ok = counted == done == ballots and after["mismatched"] == 0 and result["nwrite"] >= done
    if ok:
        return True, f"{status}s {done} = counted {counted}"
    return False, (
        f"MISMATCH: {status}s {done}, counted {counted}, ballots {ballots}, "
        f"counters≠rows {after['mismatched']}"
    )


def stop_later(stopfile: Path, duration: float) -> "asyncio.Task[float]":
    """Touch `stopfile` after `duration` seconds (the vote scripts stop sending at it); the
    task's result is the seconds the window really lasted."""
    started = time.monotonic()

    async def stop() -> float:
        await asyncio.sleep(duration)
        stopfile.touch()
        return time.monotonic() - started

    return asyncio.create_task(stop())
