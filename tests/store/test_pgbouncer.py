"""The app through PgBouncer in transaction pooling: pages, forms, votes and live results.

Debian's pgbouncer runs in front of the test PostgreSQL with a config this module writes;
the app's pool goes through it and its LISTEN connection straight to PostgreSQL
(`database.listen_url`). Storms of votes are counted exactly, also after PgBouncer replaced
every server connection (RECONNECT). Figures are printed (run with `pytest -s`).
"""

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import aiopg.sa
import processes
import psycopg2
import pytest
import sqlalchemy as sa
import stored
from live_frames import frame

from aiohttpdemo_polls.store.changes import Changes
from aiohttpdemo_polls.store.votes import VoteBatcher, VoteOutcome
from aiohttpdemo_polls.web.voting import VOTER_COOKIE

pytestmark = pytest.mark.slow

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
ADMIN, ADMIN_PASSWORD = "polls_pgbouncer_admin", "admin-secret"
POOL_SIZE = 6  # server connections: fewer than the app's clients, so they are shared
STORM_VOTES = 500
STORM_CONNECTIONS = 32


@dataclass
class PgBouncer:
    """A pgbouncer process of this test's own, in transaction pooling mode."""

    folder: Path
    target: str  # the database URL PgBouncer connects to
    port: int
    process: subprocess.Popen | None = None

    @property
    def parts(self) -> dict[str, str]:
        url = urlsplit(self.target)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        return {
            "host": query.get("host") or url.hostname or "/tmp",
            "port": str(query.get("port") or url.port or 5432),
            "dbname": unquote(url.path.lstrip("/")),
            "user": unquote(url.username or ""),
            "password": unquote(url.password or ""),
        }

    @property
    def url(self) -> str:
        """The app's URL through PgBouncer: TCP on 127.0.0.1, the role's password checked."""
        p = self.parts
        return f"postgresql://{p['user']}:{p['password']}@127.0.0.1:{self.port}/{p['dbname']}"

    def start(self) -> None:
        p = self.parts
        server = " ".join(f"{key}={p[key]}" for key in ("host", "port", "dbname", "user"))
        (self.folder / "userlist.txt").write_text(
            f'"{p["user"]}" "{p["password"]}"\n"{ADMIN}" "{ADMIN_PASSWORD}"\n'
        )
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            f"""[databases]
{p["dbname"]} = {server}{f" password={p['password']}" if p["password"] else ""}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {self.folder / "userlist.txt"}
admin_users = {ADMIN}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 200
server_lifetime = 3600
"""
        )
        # PgBouncer refuses to run as root; as root, run it as the embedded server's user,
        # the one that may enter the data directory where the server's socket is.
        user = ["-u", "embedded_postgres"] if os.geteuid() == 0 else []
        with (self.folder / "pgbouncer.log").open("wb") as log:
            self.process = subprocess.Popen(
                [PGBOUNCER, *user, str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"pgbouncer exited:\n{self.log()}"
            with contextlib.suppress(psycopg2.OperationalError):
                psycopg2.connect(self.url, connect_timeout=2).close()
                return
            assert time.monotonic() < deadline, f"pgbouncer did not answer:\n{self.log()}"
            time.sleep(0.1)

    def log(self) -> str:
        return (self.folder / "pgbouncer.log").read_text(errors="replace")[-4000:]

    def admin(self, command: str) -> list[tuple]:
        """One command on the admin console (the `pgbouncer` pseudo-database); its rows."""
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, dbname="pgbouncer", user=ADMIN, password=ADMIN_PASSWORD
        )
        try:
            conn.autocommit = True  # the console takes no BEGIN
            with conn.cursor() as cursor:
                cursor.execute(command)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    def server_pids(self) -> set[int]:
        """PostgreSQL's backend pids of PgBouncer's server connections to our database."""
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, dbname="pgbouncer", user=ADMIN, password=ADMIN_PASSWORD
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("SHOW SERVERS")
                names = [column.name for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()
        return {row["remote_pid"] for row in rows if row["database"] == self.parts["dbname"]}

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, 10)


@pytest.fixture
def pgbouncer(database_url: str, unused_tcp_port: int) -> Iterator[PgBouncer]:
    if not os.access(PGBOUNCER, os.X_OK):
        pytest.fail(f"pgbouncer is not installed at {PGBOUNCER}: run tests/install-hosts", pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix="polls-pgbouncer-"))
    folder.chmod(0o755)  # run as root, PgBouncer reads its files as the server's user
    bouncer = PgBouncer(folder, database_url, unused_tcp_port)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pooled_app(app_process, pgbouncer, database_url):
    """The app with two processes, its pool through PgBouncer, its LISTEN straight to PostgreSQL."""
    app = app_process(
        "--workers", "2", database_url=pgbouncer.url, env={"POLLS_LISTEN_DATABASE_URL": database_url}
    )
    app.wait_serving(2)
    return app


@dataclass
class Storm:
    answered: set[str]  # voters whose vote was answered with the redirect to the results
    statuses: dict[str, int]
    seconds: float

    @property
    def per_second(self) -> float:
        return len(self.answered) / self.seconds


async def storm(base: str, question_id: int, choices: list[int], votes: int = STORM_VOTES) -> Storm:
    """`votes` votes from distinct voters, STORM_CONNECTIONS at a time; each voter's id is the
    client's own (a well-formed cookie), so every answer is tied to its ballot."""
    voters = [secrets.token_urlsafe(18) for _ in range(votes)]
    answered: set[str] = set()
    statuses: dict[str, int] = {}
    pending = iter(enumerate(voters))
    connector = aiohttp.TCPConnector(limit=STORM_CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=30)

    async def sender(session: aiohttp.ClientSession) -> None:
        for n, voter in pending:
            async with session.post(
                f"{base}/poll/{question_id}/vote",
                data={"choice": str(choices[n % len(choices)])},
                headers={"Cookie": f"{VOTER_COOKIE}={voter}"},
                allow_redirects=False,
            ) as response:
                await response.read()
                key = str(response.status)
                statuses[key] = statuses.get(key, 0) + 1
                if response.status == 302 and response.headers["Location"] == f"/poll/{question_id}/results":
                    answered.add(voter)

    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as session:
        started = time.monotonic()
        await asyncio.gather(*(sender(session) for _ in range(STORM_CONNECTIONS)))
        seconds = time.monotonic() - started
    return Storm(answered, statuses, seconds)


async def test_pages_forms_and_manage_actions_work_through_transaction_pooling(pooled_app, sync_engine):
    base = pooled_app.url
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies from an IP address, as a browser does
    async with aiohttp.ClientSession() as maker, aiohttp.ClientSession(cookie_jar=jar) as visitor:
        form = [("question_text", "Pooled lunch?"), ("choice", "Soup"), ("choice", "Bread")]
        response = await maker.post(f"{base}/poll/new", data=form, allow_redirects=False)
        assert response.status == 303, await response.text()
        manage = response.headers["Location"]
        question_id = int(re.fullmatch(r"/poll/(\d+)/manage/[A-Za-z0-9_-]+", manage)[1])

        edited = await maker.post(
            base + manage,
            data=[
                ("action", "edit"),
                ("question_text", "Pooled dinner?"),
                ("choice", "Soup"),
                ("choice", "Rice"),
            ],
            allow_redirects=False,
        )
        assert edited.status == 303 and edited.headers["Location"] == f"{manage}?done=edited"
        for path in ("/", f"/poll/{question_id}", f"/poll/{question_id}/results"):
            async with visitor.get(base + path) as page:
                assert page.status == 200, path
                assert "Pooled dinner?" in await page.text()
        with sync_engine.connect() as conn:
            _soup, rice = conn.execute(
                sa.text("SELECT id FROM choice WHERE question_id = :q ORDER BY id"), {"q": question_id}
            ).scalars()
        voted = await visitor.post(
            f"{base}/poll/{question_id}/vote", data={"choice": str(rice)}, allow_redirects=False
        )
        assert voted.status == 302
        results = await (await visitor.get(f"{base}/poll/{question_id}/results")).text()
        assert "(your vote)" in results

        for action, done in (("close", "closed"), ("reopen", "reopened")):
            answer = await maker.post(base + manage, data={"action": action}, allow_redirects=False)
            assert answer.status == 303 and answer.headers["Location"] == f"{manage}?done={done}"
        page = await (await maker.get(base + manage)).text()
        assert "Pooled dinner?" in page
        deleted = await maker.post(
            base + manage, data={"action": "delete", "confirm": "yes"}, allow_redirects=False
        )
        assert deleted.status == 303 and deleted.headers["Location"] == "/poll/deleted"
        gone = await visitor.get(f"{base}/poll/{question_id}")
        assert gone.status == 404
    with sync_engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM question WHERE id = :q"), {"q": question_id}).scalar()
            == 0
        )


async def test_vote_storms_through_pgbouncer_count_every_vote_also_after_it_replaces_its_connections(
    pooled_app, app_process, pgbouncer, make_question, sync_engine, vote_rows_match_counters, eventually
):
    question = make_question("Pooled storm?", choices=("Red", "Green", "Blue"))
    question_id, choices = question["id"], question["choices"]
    base = pooled_app.url
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as watcher,
        watcher.ws_connect(f"{base}/poll/{question_id}/live") as ws,
    ):
        assert (await frame(ws, timeout=10))["total"] == 0
        first = await storm(base, question_id, choices)
        assert first.statuses == {"302": STORM_VOTES}, pgbouncer.log()
        assert stored.voters(sync_engine, question_id) == first.answered
        assert vote_rows_match_counters()

        before = pgbouncer.server_pids()
        assert before  # the votes went through PgBouncer's server connections
        pgbouncer.admin("RECONNECT")

        async def replaced() -> bool:
            return not (pgbouncer.server_pids() & before)

        await eventually(replaced, timeout=30)  # idle ones at once, busy ones once released
        second = await storm(base, question_id, choices)
        assert second.statuses == {"302": STORM_VOTES}, pgbouncer.log()
        assert stored.voters(sync_engine, question_id) == first.answered | second.answered
        assert vote_rows_match_counters()
        assert not (pgbouncer.server_pids() & before)

        # Live results move, though LISTEN cannot go through PgBouncer (listen_url).
        total = 2 * STORM_VOTES
        seen = await frame(ws, timeout=10)
        while seen["total"] < total:
            seen = await frame(ws, timeout=10)
        assert seen["total"] == total
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as voter:
            voted = await voter.post(
                f"{base}/poll/{question_id}/vote", data={"choice": str(choices[0])}, allow_redirects=False
            )
            assert voted.status == 302
            answered = time.monotonic()
            update = await frame(ws, timeout=1.0)
            latency = time.monotonic() - answered
        assert update["total"] == total + 1

    # The same storm on the app connected straight to PostgreSQL, for comparison.
    direct = app_process("--workers", "2")
    direct.wait_serving(2)
    other = make_question("Direct storm?", choices=("Red", "Green", "Blue"))
    straight = await storm(direct.url, other["id"], other["choices"])
    assert straight.statuses == {"302": STORM_VOTES}
    assert stored.voters(sync_engine, other["id"]) == straight.answered
    print(
        f"\n[pgbouncer] votes {STORM_VOTES} per storm, {STORM_CONNECTIONS} connections, 2 processes: "
        f"through PgBouncer {first.per_second:.0f}/s, after RECONNECT {second.per_second:.0f}/s, "
        f"direct {straight.per_second:.0f}/s; all answered 302 and counted; "
        f"server connections replaced {len(before)}; live update {latency * 1000:.0f} ms"
    )


async def test_batcher_counts_a_vote_on_a_connection_that_lost_its_prepared_statement(
    database_url, make_question, votes_of, vote_rows_match_counters
):
    """What a pooler's new server connection looks like to a client: the session state is gone."""
    question = make_question(choices=("Yes", "No"))
    yes, no = question["choices"]
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=1) as engine:
        batcher = VoteBatcher(engine, Changes(database_url))  # a bus nobody listens to
        assert await batcher.cast(question["id"], [yes], secrets.token_urlsafe(18)) is VoteOutcome.COUNTED
        async with engine.acquire() as conn:
            await conn.execute("DEALLOCATE ALL")  # as on a server connection PgBouncer just opened
        same = secrets.token_urlsafe(18)
        assert await batcher.cast(question["id"], [no], same) is VoteOutcome.COUNTED
        assert await batcher.cast(question["id"], [no], same) is VoteOutcome.ALREADY_VOTED
    assert votes_of(question["id"]) == {yes: 1, no: 1}
    assert vote_rows_match_counters()
