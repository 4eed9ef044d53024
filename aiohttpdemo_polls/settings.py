"""Configuration: a YAML file, validated by trafaret, then POLLS_* environment overrides."""

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trafaret as t
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "polls.yaml"

_port = t.ToInt(gte=1, lte=65535)

SCHEMA = t.Dict(
    {
        t.Key("host", default="127.0.0.1"): t.String(),
        t.Key("port", default=8080): _port,
        t.Key("debug", default=False): t.ToBool(),
        t.Key("https", default=False): t.ToBool(),
        t.Key("max_body_size", default=1024 * 1024): t.ToInt(gte=1024),
        # Diagnostics below this level are dropped; access lines are `access_log`'s business.
        t.Key("log_level", default="INFO"): t.Enum("DEBUG", "INFO", "WARNING", "ERROR"),
        # One Apache "combined" line per request on stdout; off when nginx logs them already.
        t.Key("access_log", default=True): t.ToBool(),
        # Run on uvloop (pip install -e '.[uvloop]'): a faster event loop, same behaviour.
        t.Key("uvloop", default=False): t.ToBool(),
        t.Key("database"): t.Dict(
            {
                t.Key("url", default=None): t.Null() | t.Regexp(r"^postgres(ql)?://\S*$") & t.String(),
                t.Key("embedded_dir", default=".pgdata"): t.String(),
                t.Key("name", default="aiohttpdemo_polls"): t.Regexp(r"^[a-z_][a-z0-9_]*$") & t.String(),
                t.Key("user", default="aiohttpdemo_user"): t.Regexp(r"^[a-z_][a-z0-9_]*$") & t.String(),
                t.Key("password", default=""): t.String(allow_blank=True),
                t.Key("pool_min", default=1): t.ToInt(gte=0),
                t.Key("pool_max", default=10): t.ToInt(gte=1),
                # Seconds a connect or a query may take before the page becomes a 503: a
                # server that hangs (lost network, frozen host) must not hang every page.
                t.Key("timeout", default=5): t.ToFloat(gt=0, lte=600),
            }
        ),
        # Live results (live.py): how notices are coalesced, and how many watchers a process takes.
        t.Key("live", default={}): t.Dict(
            {
                t.Key("window_ms", default=100): t.ToInt(gte=0, lte=10_000),
                t.Key("max_watchers", default=10_000): t.ToInt(gte=0),
                t.Key("heartbeat_s", default=30): t.ToFloat(gte=1, lte=3600),
            }
        ),
    }
)

# Environment variable -> (section, key) in the validated config.
ENVIRONMENT = {
    "POLLS_HOST": (None, "host"),
    "POLLS_PORT": (None, "port"),
    "POLLS_DATABASE_URL": ("database", "url"),
    "POLLS_LOG_LEVEL": (None, "log_level"),
    "POLLS_UVLOOP": (None, "uvloop"),
}


class ConfigError(Exception):
    """A configuration file or value that cannot be used; the message names the key."""


def load(path: str | Path = DEFAULT_CONFIG, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read `path`, apply POLLS_* overrides from `environ`, and validate the result."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")

    for variable, (section, key) in ENVIRONMENT.items():
        value = (environ or {}).get(variable)
        if value:
            target = raw.setdefault(section, {}) if section else raw
            if not isinstance(target, dict):
                raise ConfigError(f"{path}: {section}: expected a mapping")
            target[key] = value

    try:
        config = SCHEMA.check(raw)
    except t.DataError as exc:
        raise ConfigError(f"{path}: {_first_problem(exc.as_dict(value=True))}") from None
    if config["database"]["pool_min"] > config["database"]["pool_max"]:
        raise ConfigError(f"{path}: database.pool_min: must not exceed database.pool_max")
    config["config_path"] = str(path)
    return config


def _first_problem(problem: Any, prefix: str = "") -> str:
    """Flatten trafaret's nested error dict to 'section.key: message'."""
    if isinstance(problem, dict):
        key, inner = next(iter(sorted(problem.items(), key=lambda item: str(item[0]))))
        return _first_problem(inner, f"{prefix}{key}." if not isinstance(inner, str) else f"{prefix}{key}")
    return f"{prefix}: {problem}" if prefix else str(problem)


def embedded_dir(config: Mapping[str, Any]) -> Path:
    """Where the embedded PostgreSQL keeps its data: relative paths are under the project."""
    return PROJECT_ROOT / config["database"]["embedded_dir"]


def config_argument(parser: argparse.ArgumentParser) -> None:
    """The -c/--config option every entry point shares."""
    parser.add_argument(
        "-c", "--config", default=str(DEFAULT_CONFIG), metavar="FILE", help="YAML settings file"
    )


def from_argv(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Load the config named by -c/--config in `argv` (the default file otherwise)."""
    parser = argparse.ArgumentParser(add_help=False)
    config_argument(parser)
    args, _ = parser.parse_known_args(list(argv))
    return load(args.config, os.environ if environ is None else environ)
