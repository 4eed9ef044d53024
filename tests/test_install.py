"""The wheel, installed into a fresh virtual environment, works from outside the checkout:
the pages with their styles, scripts and compiled translations, and setting up its own database."""

import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import processes
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.store import migrate, pgserver, provision
from aiohttpdemo_polls.web import i18n

pytestmark = pytest.mark.slow

# What a clean clone lacks: the wheel is built from a copy without these, since an in-tree build
# leaves build/ behind, and a stale build/ can pack files that are gone from the tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", ".pgdata", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    "node_modules", "screenshots", "bench-results", "*.mo",
)  # fmt: skip


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def public_folder(prefix: str) -> Path:
    """A new folder that others may enter: run as root, the embedded server's user must reach
    both its data and the wheel's programs (see pgserver.data_dir)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def python() -> Iterator[Path]:
    """The interpreter of a new virtual environment with the wheel installed, as a user would."""
    root = public_folder("polls-wheel-")
    shutil.copytree(settings.PROJECT_ROOT, root / "source", ignore=NOT_SOURCE)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "wheels", root / "source")
    (wheel,) = (root / "wheels").glob("*.whl")
    run(sys.executable, "-m", "venv", root / "venv")
    run(root / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    yield root / "venv" / "bin" / "python"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def elsewhere() -> Iterator[Callable[..., dict]]:
    """Keyword arguments for a subprocess that runs outside the checkout: a working directory,
    and a home and data folder of its own, so no user's data is seen or touched."""
    folder = public_folder("polls-install-")
    (folder / "cwd").mkdir()

    def kwargs(**environ: str) -> dict:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "XDG_DATA_HOME": str(folder / "data")}
        return {"cwd": folder / "cwd", "env": env | environ}

    yield kwargs
    pgdata = folder / "data" / "aiohttpdemo_polls" / ".pgdata"
    if pgdata.exists():
        pgserver.stop(pgdata)  # a test that failed before its stop-db
    shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def serving(
    python: Path, port: int, eventually: Callable[..., Awaitable[None]], cwd: Path, env: dict
) -> AsyncIterator[aiohttp.ClientSession]:
    """`python -m aiohttpdemo_polls` with no config file, and a session for its URL once it answers."""
    log = cwd / "app.log"
    with log.open("wb") as output:
        app = subprocess.Popen(
            [python, "-m", "aiohttpdemo_polls"],
            cwd=cwd,
            # Built-in settings but the port: another copy of the app here must not stop this one.
            env=env | {"POLLS_PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:

            async def answers() -> bool:
                assert app.poll() is None, f"the app exited:\n{log.read_text()}"
                try:
                    async with session.get("/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(answers, timeout=60)
            yield session
    finally:
        processes.stop(app, 30)


async def test_installed_wheel_serves_pages_styles_and_scripts_from_any_directory(
    python, elsewhere, database_url, make_question, unused_tcp_port, eventually
):
    where = run(python, "-c", "import aiohttpdemo_polls; print(aiohttpdemo_polls.__file__)", **elsewhere())
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(python.parent.parent), "not the installed copy"
    compiled = sorted(p.parts[-3] for p in (package / "translations").glob("*/LC_MESSAGES/messages.mo"))
    assert compiled == sorted(i18n.LANGUAGES), "the wheel lacks compiled catalogs"
    poll = make_question("Installed from a wheel?", choices=("Yes", "Of course"))

    run_where = elsewhere(POLLS_DATABASE_URL=database_url)
    async with serving(python, unused_tcp_port, eventually, **run_where) as session:
        async with session.get("/") as index:
            assert index.status == 200 and index.content_type == "text/html"
            assert "Installed from a wheel?" in await index.text()
        async with session.get(f"/poll/{poll['id']}") as page:
            assert page.status == 200
            assert "Of course" in await page.text()
        # The catalogs the build compiled, read from inside the installed package.
        async with session.get(f"/poll/{poll['id']}", headers={"Accept-Language": "de"}) as german:
            text = await german.text()
            assert '<html lang="de">' in text and ">Abstimmen</button>" in text
        for name, content_types in [
            ("style.css", {"text/css"}),
            ("live.js", {"text/javascript", "application/javascript"}),
        ]:
            async with session.get(f"/static/{name}") as static:
                assert static.status == 200 and static.content_type in content_types, name
                assert await static.read() == (settings.PROJECT_ROOT / "static" / name).read_bytes()


def table_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("question", "choice", "ballot", "vote", "poll_results")
            }
    finally:
        engine.dispose()


def test_installed_init_db_creates_role_database_schema_and_samples_once(
    python, elsewhere, stoppable_database
):
    admin_url = stoppable_database.url
    app_url = pgserver.database_url(
        admin_url, {"user": "installed", "password": "", "name": "installed_polls"}
    )
    init_db = [python, "-m", "aiohttpdemo_polls", "init-db", "--admin-url", admin_url]

    first = run(*init_db, **elsewhere(POLLS_DATABASE_URL=app_url))
    assert "created role installed" in first.stdout and "created database installed_polls" in first.stdout
    assert f"added {len(provision.SAMPLE_POLLS)} sample polls" in first.stdout
    # The migrations travel in the wheel: the schema came from them.
    assert f"database empty, upgraded to {migrate.head()}" in first.stdout
    created = table_counts(app_url)
    assert created["question"] == len(provision.SAMPLE_POLLS) and created["vote"] > 0

    second = run(*init_db, **elsewhere(POLLS_DATABASE_URL=app_url))
    assert second.stdout == f"database already at {migrate.head()}\n"
    assert table_counts(app_url) == created


async def test_installed_app_sets_up_and_serves_its_own_embedded_database(
    python, elsewhere, unused_tcp_port, eventually
):
    setup = run(python, "-m", "aiohttpdemo_polls", "init-db", **elsewhere())
    assert f"added {len(provision.SAMPLE_POLLS)} sample polls" in setup.stdout
    pgdata = Path(elsewhere()["env"]["XDG_DATA_HOME"]) / "aiohttpdemo_polls" / ".pgdata"
    assert (pgdata / "postmaster.pid").is_file(), "the data is not in the user's data folder"

    async with serving(python, unused_tcp_port, eventually, **elsewhere()) as session:
        index = await session.get("/")
        assert index.status == 200
        assert "What&#39;s new?" in await index.text()

    stop = run(python, "-m", "aiohttpdemo_polls", "stop-db", **elsewhere())
    assert stop.stdout.strip() == "embedded PostgreSQL stopped"
    assert not (pgdata / "postmaster.pid").exists()
