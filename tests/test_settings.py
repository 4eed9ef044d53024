"""Configuration: the files, POLLS_* overrides, and one clear line for a bad value."""

import subprocess
import sys

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
        ("port: 8080\n", {}, "database"),
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


@pytest.mark.parametrize("command", [[], ["dsn"], ["psql"]])
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


def test_missing_config_file_is_one_line_and_status_2(tmp_path):
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
