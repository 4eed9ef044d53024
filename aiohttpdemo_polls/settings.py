"""Configuration: a YAML file or built-in defaults, POLLS_* overrides, validated by trafaret."""

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trafaret as t
import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
# A built package (`pip install .`, the wheel) carries templates/ and static/ inside it. A checkout,
# editable install included, keeps them at its top level: setuptools' editable finder does not map
# a folder without __init__.py into the package, so the code cannot find them there through import.
INSTALLED = (PACKAGE_DIR / "templates").is_dir()
ASSETS = PACKAGE_DIR if INSTALLED else PROJECT_ROOT  # holds templates/ and static/
# Read when no -c names a file, in a checkout only; an installed app runs on SCHEMA's defaults.
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "polls.yaml"

_port = t.ToInt(gte=1, lte=65535)


def _networks(value: Any) -> list[str] | t.DataError:
    """Addresses or CIDR blocks (`10.0.0.0/8`, `::1`): a YAML list, or one comma-separated line
    from the environment. Kept as text; a typo is a config error, not a proxy never trusted."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return t.DataError("expected a list of IP addresses or networks")
    found = []
    for item in (item.strip() for item in items):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return t.DataError(f"{item!r} is not an IP address or network")
        found.append(item)
    return found


SCHEMA = t.Dict(
    {
        t.Key("host", default="127.0.0.1"): t.String(),
        t.Key("port", default=8080): _port,
        # Serve /static/ from the app and reload edited templates: on unless nginx serves static
        # files (production.yaml), so an install with no config file shows its styles and scripts.
        t.Key("debug", default=True): t.ToBool(),
        t.Key("https", default=False): t.ToBool(),
        t.Key("max_body_size", default=1024 * 1024): t.ToInt(gte=1024),
        # Diagnostics below this level are dropped; access lines are `access_log`'s business.
        t.Key("log_level", default="INFO"): t.Enum("DEBUG", "INFO", "WARNING", "ERROR"),
        # One Apache "combined" line per request on stdout; off when nginx logs them already.
        t.Key("access_log", default=True): t.ToBool(),
        # Run on uvloop (pip install -e '.[uvloop]'): a faster event loop, same behaviour.
        t.Key("uvloop", default=False): t.ToBool(),
        t.Key("database", default={}): t.Dict(
            {
                t.Key("url", default=None): t.Null() | t.Regexp(r"^postgres(ql)?://\S*$") & t.String(),
                # The LISTEN connection's server, when `url` names a pooler in transaction
                # mode (PgBouncer), which cannot carry LISTEN; None: `url` serves for both.
                t.Key("listen_url", default=None): t.Null() | t.Regexp(r"^postgres(ql)?://\S*$") & t.String(),
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
        # Who may make polls: anyone (`open`), whoever knows `creation_key` (`key`), or nobody
        # through the site (`closed`: polls come from init_db.py or SQL).
        t.Key("creation", default="open"): t.Enum("open", "key", "closed"),
        t.Key("creation_key", default=None): t.Null() | t.String(),
        t.Key("limits", default={}): t.Dict(
            {
                # New polls per client address in any hour, counted in the database.
                t.Key("polls_per_hour", default=20): t.ToInt(gte=1, lte=1_000_000),
                # Reports of polls per client address in any hour, counted in the database.
                t.Key("reports_per_hour", default=10): t.ToInt(gte=1, lte=1_000_000),
            }
        ),
        # Polls closed for longer than `closed_days` are deleted, with their ballots and votes,
        # by an hourly job of the app (web/retention.py) or `python -m aiohttpdemo_polls purge`.
        # 0 keeps every poll until its maker deletes it.
        t.Key("retention", default={}): t.Dict(
            {
                t.Key("closed_days", default=180): t.ToInt(gte=0, lte=36_500),
            }
        ),
        # Peers whose X-Forwarded-For is believed (nginx's address, a load balancer's network):
        # the client address is then the last untrusted hop in it. Anyone else's is ignored.
        t.Key("trusted_proxies", default=[]): t.Call(_networks),
        # Live results (live/hub.py): how changes are coalesced, and how many watchers a process takes.
        t.Key("live", default={}): t.Dict(
            {
                t.Key("window_ms", default=100): t.ToInt(gte=0, lte=10_000),
                t.Key("max_watchers", default=10_000): t.ToInt(gte=0),
                t.Key("heartbeat_s", default=30): t.ToFloat(gte=1, lte=3600),
            }
        ),
        # Prometheus metrics (metrics.py) on a listener of their own, never on the site's port,
        # so that the public site cannot serve them; a host's processes are added up. 0: off.
        # Off unless configured (production.yaml: 9101): a fixed port can be held by one copy
        # of the app only, and a second copy on defaults must serve, not stop.
        t.Key("metrics", default={}): t.Dict(
            {
                t.Key("host", default="127.0.0.1"): t.String(),
                t.Key("port", default=0): t.ToInt(gte=0, lte=65535),
            }
        ),
    }
)

# Environment variable -> (section, key) in the validated config.
ENVIRONMENT = {
    "POLLS_HOST": (None, "host"),
    "POLLS_PORT": (None, "port"),
    "POLLS_DATABASE_URL": ("database", "url"),
    "POLLS_LISTEN_DATABASE_URL": ("database", "listen_url"),
    "POLLS_LOG_LEVEL": (None, "log_level"),
    "POLLS_UVLOOP": (None, "uvloop"),
    "POLLS_METRICS_PORT": ("metrics", "port"),
    "POLLS_CREATION": (None, "creation"),
    "POLLS_CREATION_KEY": (None, "creation_key"),
    "POLLS_TRUSTED_PROXIES": (None, "trusted_proxies"),
    "POLLS_RETENTION_CLOSED_DAYS": ("retention", "closed_days"),
}


class ConfigError(Exception):
    """A configuration file or value that cannot be used; the message names the key."""


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read `path` (None: the default file, if any), apply POLLS_* overrides, and validate."""
    if path is None and not INSTALLED:
        path = DEFAULT_CONFIG
    raw = {} if path is None else _read(Path(path))
    source = path or "built-in settings"

    for variable, (section, key) in ENVIRONMENT.items():
        value = (environ or {}).get(variable)
        if value:
            target = raw.setdefault(section, {}) if section else raw
            if not isinstance(target, dict):
                raise ConfigError(f"{source}: {section}: expected a mapping")
            target[key] = value

    try:
        config = SCHEMA.check(raw)
    except t.DataError as exc:
        raise ConfigError(f"{source}: {_first_problem(exc.as_dict(value=True))}") from None
    if config["database"]["pool_min"] > config["database"]["pool_max"]:
        raise ConfigError(f"{source}: database.pool_min: must not exceed database.pool_max")
    if config["metrics"]["port"] == config["port"]:
        raise ConfigError(f"{source}: metrics.port: must not be the site's port ({config['port']})")
    if config["creation"] == "key" and not (config["creation_key"] or "").strip():
        raise ConfigError(
            f"{source}: creation_key: must be set when creation is 'key' (or POLLS_CREATION_KEY)"
        )
    config["config_path"] = None if path is None else str(path)
    return config


def _read(path: Path) -> dict[str, Any]:
    """The settings in a YAML file; a file named but missing is an error, not the defaults."""
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
    return raw


def _first_problem(problem: Any, prefix: str = "") -> str:
    """Flatten trafaret's nested error dict to 'section.key: message'."""
    if isinstance(problem, dict):
        key, inner = next(iter(sorted(problem.items(), key=lambda item: str(item[0]))))
        return _first_problem(inner, f"{prefix}{key}." if not isinstance(inner, str) else f"{prefix}{key}")
    return f"{prefix}: {problem}" if prefix else str(problem)


def embedded_dir(config: Mapping[str, Any]) -> Path:
    """Where the embedded PostgreSQL keeps its data: a relative path is under data_home()."""
    return data_home() / config["database"]["embedded_dir"]


def data_home() -> Path:
    """The checkout when run from one (its .pgdata); an installed app uses the user's data
    folder, so that every working directory finds the same database."""
    if not INSTALLED:
        return PROJECT_ROOT
    xdg = os.environ.get("XDG_DATA_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share") / "aiohttpdemo_polls"


def config_argument(parser: argparse.ArgumentParser) -> None:
    """The -c/--config option every entry point shares."""
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="YAML settings file (default: config/polls.yaml in a checkout, else built-in settings)",
    )


def from_argv(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Load the config named by -c/--config in `argv` (the default otherwise)."""
    parser = argparse.ArgumentParser(add_help=False)
    config_argument(parser)
    args, _ = parser.parse_known_args(list(argv))
    return load(args.config, os.environ if environ is None else environ)
