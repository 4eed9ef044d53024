"""Configuration: the files, POLLS_* overrides, and one clear line for a bad value."""

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.app import init_app
from aiohttpdemo_polls.web.config import config_key
from aiohttpdemo_polls.web.database import changes_key, engine_key


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiohttpdemo_polls", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_development_config_is_valid_and_uses_the_embedded_server():
    config = settings.load(settings.DEFAULT_CONFIG, {})
    assert config["port"] == 8080 and config["host"] == "127.0.0.1"
    assert config["database"]["url"] is None
    assert config["live"] == {"window_ms": 100, "max_watchers": 10_000, "heartbeat_s": 30}


def test_checkout_reads_its_config_file_when_none_is_named():
    assert settings.load(None, {}) == settings.load(settings.DEFAULT_CONFIG, {})
    assert settings.load(None, {})["database"]["password"] == "aiohttpdemo_pass"  # from the file


def test_installed_app_without_a_config_file_runs_on_built_in_defaults(monkeypatch):
    monkeypatch.setattr(settings, "INSTALLED", True)
    config = settings.load(None, {"POLLS_PORT": "9000"})
    assert config["config_path"] is None
    assert config["port"] == 9000 and config["host"] == "127.0.0.1"
    assert config["debug"] is True  # the app serves /static/ itself: styles work with no nginx
    assert config["database"] == settings.SCHEMA.check({})["database"]
    assert config["database"]["url"] is None and config["database"]["embedded_dir"] == ".pgdata"


def test_bad_environment_value_with_built_in_defaults_names_the_key(monkeypatch):
    monkeypatch.setattr(settings, "INSTALLED", True)
    with pytest.raises(settings.ConfigError, match=r"^built-in settings: port: "):
        settings.load(None, {"POLLS_PORT": "eighty"})


def test_file_without_a_database_section_uses_the_database_defaults(tmp_path):
    path = tmp_path / "polls.yaml"
    path.write_text("port: 9000\n")
    config = settings.load(path, {})
    assert config["database"]["name"] == "aiohttpdemo_polls" and config["database"]["pool_max"] == 10


def test_embedded_data_lives_in_the_checkout_when_run_from_one():
    config = settings.load(settings.DEFAULT_CONFIG, {})
    assert settings.embedded_dir(config) == settings.PROJECT_ROOT / ".pgdata"


def test_installed_app_keeps_embedded_data_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "INSTALLED", True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config = settings.load(None, {})
    assert settings.embedded_dir(config) == tmp_path / "data" / "aiohttpdemo_polls" / ".pgdata"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec ignores relative paths
    assert settings.embedded_dir(config) == tmp_path / "home" / ".local/share/aiohttpdemo_polls/.pgdata"
    config["database"]["embedded_dir"] = "/srv/polls/pgdata"
    assert settings.embedded_dir(config) == Path("/srv/polls/pgdata")


def test_environment_overrides_host_port_and_database_url():
    config = settings.load(
        settings.DEFAULT_CONFIG,
        {"POLLS_HOST": "0.0.0.0", "POLLS_PORT": "9000", "POLLS_DATABASE_URL": "postgresql://u:p@db/polls"},
    )
    assert config["host"] == "0.0.0.0"
    assert config["port"] == 9000
    assert config["database"]["url"] == "postgresql://u:p@db/polls"


def test_listen_url_defaults_to_none_so_the_database_url_serves_for_both():
    config = settings.load(settings.DEFAULT_CONFIG, {"POLLS_DATABASE_URL": "postgresql://u:p@pooler/polls"})
    assert config["database"]["listen_url"] is None
    assert (
        settings.load(settings.PROJECT_ROOT / "config" / "production.yaml", {})["database"]["listen_url"]
        is None
    )


def test_listen_url_comes_from_the_file_or_the_environment(tmp_path):
    path = tmp_path / "polls.yaml"
    path.write_text(
        "database:\n  url: postgresql://u:p@pooler:6432/polls\n  listen_url: postgresql://u:p@db/polls\n"
    )
    assert settings.load(path, {})["database"]["listen_url"] == "postgresql://u:p@db/polls"
    environ = {"POLLS_LISTEN_DATABASE_URL": "postgresql://u:p@db2/polls"}
    config = settings.load(path, environ)
    assert config["database"]["listen_url"] == "postgresql://u:p@db2/polls"
    assert config["database"]["url"] == "postgresql://u:p@pooler:6432/polls"  # the pool's, untouched


async def test_listener_connects_to_listen_url_and_the_pool_to_url(aiohttp_client, database_url, sync_engine):
    """The LISTEN connection is the one named by listen_url: told apart by its application_name."""
    marked = f"{database_url}{'&' if '?' in database_url else '?'}application_name=polls_listener_test"
    config = settings.load(
        settings.PROJECT_ROOT / "config" / "polls_test.yaml",
        {"POLLS_DATABASE_URL": database_url, "POLLS_LISTEN_DATABASE_URL": marked},
    )
    client = await aiohttp_client(init_app(config=config))
    bus = client.app[changes_key]
    async with client.app[engine_key].acquire() as conn:
        pool_pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
    with sync_engine.connect() as conn:
        names = dict(
            conn.execute(
                sa.text("SELECT pid, application_name FROM pg_stat_activity WHERE pid IN (:a, :b)"),
                {"a": bus.backend_pid, "b": pool_pid},
            ).all()
        )
    assert names == {bus.backend_pid: "polls_listener_test", pool_pid: ""}


async def test_listener_uses_the_database_url_when_listen_url_is_unset(client, sync_engine):
    with sync_engine.connect() as conn:
        listening = conn.execute(
            sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": client.app[changes_key].backend_pid},
        ).scalar_one()
    assert "LISTEN" in listening
    assert client.app[config_key]["database"]["listen_url"] is None


@pytest.mark.parametrize(
    "yaml_text,environ,expected",
    [
        ("port: [1, 2]\ndatabase: {}\n", {}, "port"),
        ("port: 70000\ndatabase: {}\n", {}, "port"),
        ("port: 8080\ndatabase: [1]\n", {}, "database"),
        ("database: {pool_max: lots}\n", {}, "database.pool_max"),
        ("database: {pool_min: 5, pool_max: 2}\n", {}, "database.pool_min"),
        ("database: {url: 'mysql://x'}\n", {}, "database.url"),
        ("database: {}\n", {"POLLS_PORT": "eighty"}, "port"),
        ("database: {}\n", {"POLLS_DATABASE_URL": "not a url"}, "database.url"),
        ("database: {}\n", {"POLLS_LISTEN_DATABASE_URL": "db.internal"}, "database.listen_url"),
        ("port: [unclosed\n", {}, "not valid YAML"),
        ("- a list\n", {}, "mapping"),
        ("database: {}\nlive: {window_ms: -5}\n", {}, "live.window_ms"),
        ("database: {}\nlive: {max_watchers: many}\n", {}, "live.max_watchers"),
        ("database: {}\nlive: {heartbeat_s: 0}\n", {}, "live.heartbeat_s"),
    ],
)
def test_bad_config_names_the_key(tmp_path, yaml_text, environ, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(settings.ConfigError) as error:
        settings.load(path, environ)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("command", [[], ["dsn"], ["psql"], ["init-db"]])
def test_bad_config_stops_the_program_with_one_line_and_status_2(tmp_path, command):
    path = tmp_path / "bad.yaml"
    path.write_text("port: nope\ndatabase: {}\n")
    result = run_module(*command, "-c", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "port" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_value_stops_the_program_with_status_2():
    result = run_module("dsn", env={"POLLS_PORT": "http"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "port" in result.stderr


@pytest.mark.parametrize("command", [[], ["init-db"]])
def test_missing_config_file_is_one_line_and_status_2(tmp_path, command):
    result = run_module("-c", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_dsn_prints_the_configured_database_url():
    url = "postgresql://someone:secret@db.example/polls"
    result = run_module("dsn", env={"POLLS_DATABASE_URL": url})
    assert result.returncode == 0
    assert result.stdout.strip() == url


def test_taken_port_is_one_line_and_status_1(database_url):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_module(
            "-c", "config/polls_test.yaml", env={"POLLS_PORT": str(port), "POLLS_DATABASE_URL": database_url}
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_voter_codes_key_comes_from_the_environment_and_is_empty_by_default():
    assert settings.load(settings.DEFAULT_CONFIG)["voter_codes_key"] == ""
    config = settings.load(settings.DEFAULT_CONFIG, {"POLLS_VOTER_CODES_KEY": "s3cret"})
    assert config["voter_codes_key"] == "s3cret"
