"""Configuration: the files, POLLS_* overrides, and one clear line for a bad value."""

import subprocess
import sys
from pathlib import Path

import pytest

from aiohttpdemo_polls import settings


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
