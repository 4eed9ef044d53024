"""Shared fixtures: a real PostgreSQL database, the app on it, and data builders.

The database is the embedded server's `aiohttpdemo_polls_test` (config/polls_test.yaml),
or the server named by POLLS_TEST_DATABASE_URL. Every test starts from empty tables.
"""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import processes
import psutil
import pytest
import sqlalchemy as sa
import stored

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.moderation import passwords
from aiohttpdemo_polls.store import admin, codes, making, migrate, pgserver, provision, schema
from aiohttpdemo_polls.web.database import changes_key

TEST_CONFIG = settings.PROJECT_ROOT / "config" / "polls_test.yaml"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database with the app's schema; an embedded server this run started is stopped after."""
    url = os.environ.get("POLLS_TEST_DATABASE_URL")
    started_here = False
    if not url:
        config = settings.load(TEST_CONFIG, {})
        pgdata = settings.embedded_dir(config)
        started_here = pgserver.running_url(pgdata.resolve()) is None
        superuser = pgserver.start(pgdata)
        url = pgserver.database_url(superuser, config["database"])
        provision.ensure_role_and_database(superuser, url)
    engine = sa.create_engine(url, future=True)
    with engine.begin() as conn:  # the schema the way init-db makes it: the migrations
        migrate.drop_all(conn)
        migrate.upgrade(conn)
    engine.dispose()
    yield url
    if started_here:
        pgserver.stop(settings.embedded_dir(settings.load(TEST_CONFIG, {})))


@pytest.fixture(scope="session")
def sync_engine(database_url: str) -> Iterator[sa.engine.Engine]:
    """For setting up and inspecting data directly, outside the app. Its connections are
    checked before each use: tests that end every backend of the database end its idle ones too."""
    engine = sa.create_engine(database_url, future=True, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_tables(request: pytest.FixtureRequest) -> None:
    """Each test that touches the database starts with no polls and no votes."""
    if "sync_engine" not in request.fixturenames and "client" not in request.fixturenames:
        return
    engine = request.getfixturevalue("sync_engine")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE question, choice, ballot, vote, poll_creation, report, report_filing,"
                " sign_in_failure, admin_password, admin_session, audit_log RESTART IDENTITY CASCADE"
            )
        )


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(0.02)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """`await eventually(check)`: poll an async condition until it holds, with a deadline
    generous enough for a busy two-core machine (the test fails past it)."""
    return _eventually


@pytest.fixture
def end_blocked_backend(sync_engine) -> Callable[..., Awaitable[asyncio.Future]]:
    """`await end_blocked_backend(lock_sql, start)`: hold a lock (`lock_sql`), start `start()`,
    whose statement the lock makes wait, and end that statement's backend while it waits, as a
    failover does mid-statement; returns `start()`'s task once the lock is let go."""

    def waiting() -> int | None:
        with sync_engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()

    async def blocked() -> bool:
        return waiting() is not None

    async def run(lock_sql: str, start: Callable[[], Awaitable[Any]]) -> asyncio.Future:
        with sync_engine.connect() as blocker:
            blocker.execute(sa.text(lock_sql))
            task = asyncio.ensure_future(start())
            await _eventually(blocked)
            with sync_engine.connect() as conn:
                assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting()}).scalar()
            blocker.rollback()
        return task

    return run


@pytest.fixture
def config(database_url: str) -> dict[str, Any]:
    """The test config, pointed at the test database."""
    return settings.load(TEST_CONFIG, {"POLLS_DATABASE_URL": database_url})


@pytest.fixture
async def client(aiohttp_client, config):
    """A test client with its own cookie jar, like one browser."""
    return await aiohttp_client(init_app(config=config))


@pytest.fixture
async def new_browser() -> AsyncIterator[Callable[..., aiohttp.ClientSession]]:
    """`new_browser(server)`: a session on a test client (or a base URL) that keeps no cookies,
    so each of its requests comes from a new voter; closed after the test."""
    sessions: list[aiohttp.ClientSession] = []

    def open_session(server: Any, **options: Any) -> aiohttp.ClientSession:
        base = server.make_url("/") if hasattr(server, "make_url") else server
        session = aiohttp.ClientSession(base_url=str(base), cookie_jar=aiohttp.DummyCookieJar(), **options)
        sessions.append(session)
        return session

    yield open_session
    await asyncio.gather(*(session.close() for session in sessions))


@pytest.fixture
async def anonymous(client, new_browser) -> aiohttp.ClientSession:
    """A second browser-like session on the same server that keeps no cookies."""
    return new_browser(client)


@pytest.fixture
def vote() -> Callable[..., Awaitable[aiohttp.ClientResponse]]:
    """`await vote(browser, question_id, *choice_ids)`: submit the voting form as a browser does.

    Returns the answer itself (a 302 to the results when counted), its body already read;
    keyword arguments go to the request (`headers=`, `allow_redirects=True`).
    """

    async def submit(
        browser: Any, question_id: int, *choice_ids: int | str, **request: Any
    ) -> aiohttp.ClientResponse:
        request.setdefault("allow_redirects", False)
        data = [("choice", str(choice_id)) for choice_id in choice_ids]
        response = await browser.post(f"/poll/{question_id}/vote", data=data, **request)
        await response.read()
        return response

    return submit


ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_password(sync_engine) -> str:
    """The operator's /admin password, set as `set-admin-password` sets it."""
    with sync_engine.begin() as conn:
        admin.set_password(conn, passwords.hash_password(ADMIN_PASSWORD))
    return ADMIN_PASSWORD


@pytest.fixture
def sign_in(admin_password) -> Callable[..., Awaitable[aiohttp.ClientResponse]]:
    """`await sign_in(browser)`: sign in to /admin with the operator's password; the 303 answer."""

    async def submit(browser: Any, password: str = admin_password, **request: Any) -> aiohttp.ClientResponse:
        response = await browser.post(
            "/admin/sign-in", data={"password": password}, allow_redirects=False, **request
        )
        await response.read()
        return response

    return submit


@pytest.fixture
def make_question(sync_engine):
    """Insert a question `days` from now (negative: in the past) with its choices."""

    def make(
        text: str = "What's new?",
        days: float = -1,
        choices: tuple[str, ...] = ("Not much", "The sky", "Just hacking again"),
        **columns: Any,
    ) -> dict[str, Any]:
        with sync_engine.begin() as conn:
            question_id, choice_ids = making.add_poll(
                conn, text, choices, pub_date=datetime.now(UTC) + timedelta(days=days), **columns
            )
        return {"id": question_id, "choices": choice_ids}

    return make


@pytest.fixture
def make_code_poll(make_question, sync_engine, config):
    """`make_code_poll(count, **columns)`: a published poll ("Yes", "No") that requires a voter
    code, and `count` codes stored for it as the app stores them (hashed under the test key)."""

    def make(count: int = 3, **columns: Any) -> tuple[dict[str, Any], list[str]]:
        question = make_question("Who chairs the club?", choices=("Yes", "No"), requires_code=True, **columns)
        made = codes.batch_codes(codes.new_seed(), count)
        key = config["voter_codes_key"].encode()
        rows = [
            {"question_id": question["id"], "code_hash": codes.code_hash(key, question["id"], c)}
            for c in made
        ]
        with sync_engine.begin() as conn:
            conn.execute(schema.voter_code.insert(), rows)
        return question, made

    return make


class StoredPoll(NamedTuple):
    question: Any  # the question row with `closed`, or None when there is no such poll
    choices: list[str]  # its choice texts, in the order made


@pytest.fixture
def stored_poll(sync_engine) -> Callable[[int], StoredPoll]:
    """`stored_poll(question_id)`: the poll as the database holds it, read outside the app."""

    def read(question_id: int) -> StoredPoll:
        with sync_engine.connect() as conn:
            question = conn.execute(
                sa.select(schema.question, schema.closed.label("closed")).where(
                    schema.question.c.id == question_id
                )
            ).first()
            texts = conn.execute(
                sa.select(schema.choice.c.choice_text)
                .where(schema.choice.c.question_id == question_id)
                .order_by(schema.choice.c.id)
            ).scalars()
            return StoredPoll(question, list(texts))

    return read


@pytest.fixture
def votes_of(sync_engine):
    """Current counters of a question's choices, by choice id."""

    def votes(question_id: int) -> dict[int, int]:
        return stored.counters(sync_engine, question_id)

    return votes


@pytest.fixture
def vote_rows_match_counters(sync_engine):
    """True when every choice's counters equal its `vote` rows (`votes` its 'yes' rows, and a
    date poll's `if_need_be` its 'if_need_be' rows) and every ballot
    has its `vote` rows: nothing lost, doubled or half-written. Another database by URL."""

    def check(database_url: str | None = None) -> bool:
        engine = sync_engine if database_url is None else sa.create_engine(database_url, future=True)
        try:
            with engine.connect() as conn:
                mismatched = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM choice c WHERE c.votes <> (SELECT count(*) FROM vote v"
                        " WHERE v.choice_id = c.id AND v.answer = 'yes') OR c.if_need_be <> (SELECT"
                        " count(*) FROM vote v WHERE v.choice_id = c.id AND v.answer = 'if_need_be')"
                    )
                ).scalar_one()
                half_ballots = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM ballot b WHERE NOT EXISTS (SELECT 1 FROM vote v"
                        " WHERE v.question_id = b.question_id AND v.voter = b.voter)"
                    )
                ).scalar_one()
        finally:
            if engine is not sync_engine:
                engine.dispose()
        return mismatched == 0 and half_ballots == 0

    return check


class StoppableDatabase:
    """An embedded PostgreSQL server of one test's own, which the test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.url = pgserver.start(pgdata)  # superuser, database `postgres`

    def stop(self) -> None:
        pgserver.stop(self.pgdata)

    def start(self) -> None:
        pgserver.start(self.pgdata)

    def freeze(self) -> None:
        """Suspend the server and its backends (SIGSTOP): it accepts but never answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        for process in [postmaster, *postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a backend that ended since the listing
                process.send_signal(signum)


@pytest.fixture
def stoppable_database() -> Iterator[StoppableDatabase]:
    """A separate server with the app's schema, for fault tests: the shared one never stops."""
    # A folder under /tmp that others may enter: run as root, the wheel's server user must
    # reach it (a private parent would move the data to /var/lib, see pgserver.data_dir).
    folder = Path(tempfile.mkdtemp(prefix="polls-stoppable-"))
    folder.chmod(0o755)
    database = None
    try:
        database = StoppableDatabase(folder / "pgdata")
        engine = sa.create_engine(database.url, future=True)
        with engine.begin() as conn:
            migrate.upgrade(conn)
        engine.dispose()
        yield database
    finally:
        if database is not None and pgserver.running_url(database.pgdata):
            database.thaw()  # a frozen server cannot stop
        pgserver.stop(folder / "pgdata")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def add_votes(sync_engine):
    """Record votes as real ballots: `add_votes(question_id, {choice_id: n, ...})`.

    Each vote gets its own voter, ballot and `vote` row, and the counters are raised in the
    same transaction, so the data looks exactly as if people had voted through the app.
    """

    def add(question_id: int, counts: dict[int, int]) -> None:
        with sync_engine.begin() as conn:
            for choice_id, n in counts.items():
                voters = [f"test-voter-{choice_id}-{i}" for i in range(n)]
                if not voters:
                    continue
                conn.execute(
                    schema.ballot.insert(), [{"question_id": question_id, "voter": v} for v in voters]
                )
                conn.execute(
                    schema.vote.insert(),
                    [{"question_id": question_id, "voter": v, "choice_id": choice_id} for v in voters],
                )
                conn.execute(
                    schema.choice.update()
                    .where(schema.choice.c.id == choice_id)
                    .values(votes=schema.choice.c.votes + n)
                )

    return add


@pytest.fixture
def make_poll(client):
    """Make a poll through the new-poll form, as its maker would: its id, token and manage path."""

    async def make(
        question_text: str = "Where shall we eat?",
        choices: tuple[str, ...] = ("Pizza", "Sushi", "Salad"),
        **fields: str,
    ) -> dict[str, Any]:
        data = [("question_text", question_text), *(("choice", c) for c in choices), *fields.items()]
        response = await client.post("/poll/new", data=data, allow_redirects=False)
        assert response.status == 303, await response.text()
        path = response.headers["Location"]
        match = re.fullmatch(r"/poll/(\d+)/manage/([A-Za-z0-9_-]+)", path)
        assert match, path
        return {"id": int(match[1]), "token": match[2], "manage": path}

    return make


@pytest.fixture
def make_date_poll(client, sync_engine):
    """Make a date poll through the new-poll form: `await make_date_poll(("2030-01-15", "10:00"),
    ("2030-03-01", ""), timezone="Europe/Berlin")`, days with their start times (none: the
    whole day). Its id, token, manage path and option ids (in the order given)."""

    async def make(*days: tuple[str, str], question_text: str = "When shall we meet?", **fields: str) -> dict:
        data = [("kind", "dates"), ("question_text", question_text)]
        data += [
            ("timezone", fields.pop("timezone", "Europe/Berlin")),
            ("duration", fields.pop("duration", "60")),
        ]
        for day, times in days or (("2030-03-01", ""), ("2030-03-02", "")):
            data += [("day", day), ("times", times)]
        response = await client.post("/poll/new", data=data + list(fields.items()), allow_redirects=False)
        assert response.status == 303, await response.text()
        path = response.headers["Location"]
        match = re.fullmatch(r"/poll/(\d+)/manage/([A-Za-z0-9_-]+)", path)
        assert match, path
        with sync_engine.connect() as conn:
            options = conn.execute(
                sa.select(schema.choice.c.id)
                .where(schema.choice.c.question_id == int(match[1]))
                .order_by("id")
            ).scalars()
            return {"id": int(match[1]), "token": match[2], "manage": path, "options": list(options)}

    return make


class AppProcess:
    """`python -m aiohttpdemo_polls` as a real subprocess on 127.0.0.1, output kept in files."""

    def __init__(
        self, folder: Path, port: int, env: dict[str, str], *args: str, config: Path | None = TEST_CONFIG
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.stdout, self.stderr = folder / "stdout.log", folder / "stderr.log"
        # The test decides every setting: a POLLS_* variable of the developer's shell is not one.
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("POLLS_")}
        env = {**inherited, "POLLS_PORT": str(port), **env}
        settings_file = [] if config is None else ["-c", str(config)]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aiohttpdemo_polls", *settings_file, *args],
                cwd=settings.PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )

    def log(self) -> str:
        return self.stderr.read_text()

    def access_lines(self) -> list[str]:
        return self.stdout.read_text().splitlines()

    def serving_pids(self) -> list[int]:
        """Process ids that serve, in order: the one process, or each worker gunicorn booted."""
        return [int(match[1] or match[2]) for match in SERVING.finditer(self.log())]

    def wait_serving(self, count: int = 1, timeout: float = 30) -> None:
        """Until `count` processes started serving and the site answers /healthz."""
        deadline = time.monotonic() + timeout
        while len(self.serving_pids()) < count or not self._healthy():
            assert self.process.poll() is None, f"the app exited early:\n{self.log()}"
            assert time.monotonic() < deadline, f"the app did not start:\n{self.log()}"
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_exit(self, timeout: float) -> int:
        return self.process.wait(timeout)


# The one process's "[pid] INFO aiohttpdemo_polls.serve: serving on", or gunicorn's line per worker.
SERVING = re.compile(
    r"\[(\d+)\] INFO aiohttpdemo_polls\.serve: serving on |Booting worker with pid: (\d+)$",
    re.M,
)


@pytest.fixture
def app_process(tmp_path: Path, unused_tcp_port_factory, database_url: str) -> Iterator:
    """Start the app as a subprocess: `app_process("--workers", "2")`; killed after the test.

    `env` adds environment variables to the process's; `port` is a free one unless given;
    `config=None` runs on the default settings (config/polls.yaml) instead of the test file.
    """
    started: list[AppProcess] = []

    def start(
        *args: str,
        database_url: str = database_url,
        env: dict[str, str] | None = None,
        port: int | None = None,
        config: Path | None = TEST_CONFIG,
    ) -> AppProcess:
        folder = tmp_path / f"app{len(started)}"
        folder.mkdir()
        env = {"POLLS_DATABASE_URL": database_url, **(env or {})}
        app = AppProcess(folder, port or unused_tcp_port_factory(), env, *args, config=config)
        started.append(app)
        return app

    yield start
    for app in started:  # what a test that failed half-way left running
        if app.process.poll() is None:
            workers = psutil.Process(app.process.pid).children(recursive=True)
            processes.stop(app.process)
            for worker in workers:
                if worker.is_running():
                    worker.kill()


@pytest.fixture
def run_sql(sync_engine) -> Callable[..., float]:
    """`run_sql(statement, **params)`: SQL in a transaction of its own, as psql would run it,
    outside the app; returns the moment it had committed (`time.monotonic()`)."""

    def run(statement: str, **params: Any) -> float:
        with sync_engine.begin() as conn:
            conn.execute(sa.text(statement), params)
        return time.monotonic()

    return run


@pytest.fixture
def unnoticed(sync_engine):
    """`with unnoticed() as conn:` a transaction that sends no notice (its tables' triggers
    are off for it alone, as others see them), as if its notices were lost."""

    @contextlib.contextmanager
    def transaction() -> Iterator[sa.engine.Connection]:
        tables = [table.name for table in schema.metadata.sorted_tables]
        with sync_engine.begin() as conn:
            for table in tables:
                conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            yield conn
            for table in tables:
                conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))

    return transaction


@pytest.fixture
def settled(client, sync_engine) -> Callable[[], Awaitable[None]]:
    """`await settled()`: until the app has heard the notices of the data set up so far.

    A notice comes late on a busy machine and empties the cache a test just filled. Notices
    arrive in commit order, so hearing one sent now is enough (for a poll no test makes).
    """
    marker = schema.PG_INT_MAX

    async def wait() -> None:
        heard = asyncio.Event()
        subscription = client.app[changes_key].subscribe(lambda q: q == marker and heard.set())
        try:
            with sync_engine.begin() as conn:
                conn.execute(sa.select(sa.func.pg_notify(schema.CHANNEL, str(marker))))
            await asyncio.wait_for(heard.wait(), 10)
        finally:
            subscription.cancel()

    return wait
