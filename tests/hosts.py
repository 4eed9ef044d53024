"""Several app hosts on one machine: network namespaces, one PostgreSQL and PgBouncer, nginx in front.

What docs/deployment.md ("Several hosts") tells an operator to do, done from the files it
ships: PostgreSQL with config/postgresql-polls.conf and config/pg_hba-polls.conf, `init-db`
straight to it, PgBouncer with config/pgbouncer.ini and config/pgbouncer-userlist.txt (the
role's SCRAM secret copied in), each app host with config/polls-host.env and two processes
in a Linux network namespace of its own, and config/nginx.conf in front. Only addresses,
ports, paths and secrets are changed, each change checked, so a reshaped file fails here.
Each host has two links: one that nginx reaches it by, and one used only for the database
machine (the root namespace), so that a host can be cut off from the database alone.
Needs root (namespaces); everything is removed after.
"""

import contextlib
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2
from aiohttp.abc import AbstractResolver

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.store import pgserver

NGINX = os.environ.get("POLLS_NGINX", "/usr/sbin/nginx")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
CONFIG = settings.PROJECT_ROOT / "config"
APP_CONFIG = CONFIG / "production.yaml"
NGINX_SITE = CONFIG / "nginx.conf"
POSTGRESQL_CONF = CONFIG / "postgresql-polls.conf"
PG_HBA = CONFIG / "pg_hba-polls.conf"
PGBOUNCER_INI = CONFIG / "pgbouncer.ini"
PGBOUNCER_USERLIST = CONFIG / "pgbouncer-userlist.txt"
HOST_ENV = CONFIG / "polls-host.env"
NGINX_MAIN = CONFIG / "nginx-main.conf"
SERVER_NAME = "polls.example.org"  # config/nginx.conf's, kept: clients resolve it to 127.0.0.1
APP_PORT = 8080
WORKERS = 2
# What the shipped files name: the database machine's private address, the app hosts'
# subnet, and the app's role and database (kept; only the secrets are the test's).
DOCS_DB_ADDRESS = "10.0.0.5"
DOCS_APP_SUBNET = "10.0.0.0/24"
DB_NAME = DB_USER = "polls"
DB_PASSWORD = "hosts-secret"
PGBOUNCER_ADMIN, PGBOUNCER_ADMIN_PASSWORD = "pgbouncer_admin", "hosts-admin-secret"
# As root, the embedded server runs as this user: the `postgres` of the docs, whom PgBouncer
# runs as too (it refuses to run as root).
SERVER_USER = "embedded_postgres"


class HostsUnavailable(Exception):
    """This machine cannot run the multi-host test; the message says why and what to do."""


def _run(*command: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=30, **kwargs)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET, or None when nothing answered (no proxy from the environment)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


Change = tuple[str, Callable[[re.Match], str], int]


def edit(source: str, name: str, changes: list[Change]) -> str:
    """`source` with each change made exactly as often as expected: a reshaped shipped file
    fails here rather than being tested half-changed."""
    for pattern, replacement, expected in changes:
        source, found = re.subn(pattern, replacement, source, flags=re.MULTILINE)
        assert found == expected, f"{name}: expected {expected} match(es) of {pattern!r}, found {found}"
    return source


def setting(key: str, value: str) -> Change:
    """The value of the one `key = value` (or `KEY=value`) line changed."""
    return (rf"^({re.escape(key)}\s*=\s*).*$", lambda m: m[1] + value, 1)


def postgresql_conf(source: str, addresses: list[str], port: int) -> str:
    """config/postgresql-polls.conf listening on `addresses` (for the docs' one) and `port`."""
    docs_address = re.escape(DOCS_DB_ADDRESS)
    return edit(
        source,
        POSTGRESQL_CONF.name,
        [
            (rf"^(listen_addresses = '[^']*){docs_address}'", lambda m: f"{m[1]}{','.join(addresses)}'", 1),
            setting("port", str(port)),
        ],
    )


def pg_hba(source: str, subnets: list[str]) -> str:
    """config/pg_hba-polls.conf with its app hosts' line once for each of `subnets`."""
    app_line = rf"^(host\s+{DB_NAME}\s+{DB_USER}\s+){re.escape(DOCS_APP_SUBNET)}(\s+scram-sha-256)$"
    return edit(
        source, PG_HBA.name, [(app_line, lambda m: "\n".join(f"{m[1]}{net}{m[2]}" for net in subnets), 1)]
    )


def pgbouncer_ini(source: str, addresses: list[str], port: int, postgres_port: int, folder: Path) -> str:
    """config/pgbouncer.ini listening on `addresses` (for the docs' one) and `port`, in front
    of PostgreSQL's `postgres_port`, its files in `folder`."""
    docs_address = re.escape(DOCS_DB_ADDRESS)
    return edit(
        source,
        PGBOUNCER_INI.name,
        [
            (rf"^(listen_addr = .*){docs_address}$", lambda m: m[1] + ",".join(addresses), 1),
            setting("listen_port", str(port)),
            (
                rf"^({DB_NAME} = host=127\.0\.0\.1 port=)5432( dbname=)",
                lambda m: f"{m[1]}{postgres_port}{m[2]}",
                1,
            ),
            setting("unix_socket_dir", str(folder)),
            setting("logfile", str(folder / "pgbouncer.log")),
            setting("pidfile", str(folder / "pgbouncer.pid")),
            setting("auth_file", str(folder / "userlist.txt")),
        ],
    )


def pgbouncer_userlist(source: str, secret: str) -> str:
    """config/pgbouncer-userlist.txt with the role's SCRAM secret and the admin's password."""
    return edit(
        source,
        PGBOUNCER_USERLIST.name,
        [
            (rf'^"{DB_USER}" ".*"$', lambda m: f'"{DB_USER}" "{secret}"', 1),
            (
                rf'^"{PGBOUNCER_ADMIN}" ".*"$',
                lambda m: f'"{PGBOUNCER_ADMIN}" "{PGBOUNCER_ADMIN_PASSWORD}"',
                1,
            ),
        ],
    )


def host_environment(source: str, address: str, pool_url: str, listen_url: str, proxy: str) -> dict[str, str]:
    """config/polls-host.env for one host, read as systemd's EnvironmentFile= reads it."""
    rendered = edit(
        source,
        HOST_ENV.name,
        [
            setting("POLLS_HOST", address),
            setting("POLLS_DATABASE_URL", pool_url),
            setting("POLLS_LISTEN_DATABASE_URL", listen_url),
            setting("POLLS_TRUSTED_PROXIES", proxy),
        ],
    )
    lines = [line for line in rendered.splitlines() if line and not line.startswith("#")]
    environment = dict(line.split("=", 1) for line in lines)
    assert environment["POLLS_PORT"] == str(APP_PORT), "nginx's upstreams name APP_PORT"
    return environment


@dataclass
class Host:
    """One app host: a network namespace linked to the root namespace by two veth pairs,
    `veth` (nginx's way in) and `db_veth` (its only way to PostgreSQL)."""

    number: int
    netns: str
    veth: str
    subnet: str  # the first three octets: the root side is .1, the host .2
    db_veth: str
    db_subnet: str
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.subnet}.2"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    @property
    def db_gateway(self) -> str:
        """The root side of the database link: where PostgreSQL listens for this host."""
        return f"{self.db_subnet}.1"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{APP_PORT}"

    def cut_database(self) -> None:
        """Take the database link down at the root side, as a failed switch port would: the
        host's packets to PostgreSQL are lost (no error, no reset), its processes run on."""
        _run("ip", "link", "set", self.db_veth, "down")

    def restore_database(self) -> None:
        _run("ip", "link", "set", self.db_veth, "up")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM to the host's gunicorn master, as a process manager stops it; its exit status."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout)

    def start(self, environment: dict[str, str]) -> None:
        """`python -m aiohttpdemo_polls -c config/production.yaml --workers 2` in the namespace,
        with the host's environment file (`host_environment`)."""
        command = [
            sys.executable,
            "-m",
            "aiohttpdemo_polls",
            "-c",
            str(APP_CONFIG),
            "--workers",
            str(WORKERS),
        ]
        with (self.folder / "stdout.log").open("ab") as out, (self.folder / "stderr.log").open("ab") as err:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *command],
                cwd=settings.PROJECT_ROOT,
                env={**os.environ, **environment},
                stdout=out,
                stderr=err,
            )

    def log(self) -> str:
        return (self.folder / "stderr.log").read_text(errors="replace")

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds until /healthz answers 200 (from the root namespace, through the veth)."""
        started = time.monotonic()
        while http_status(f"{self.url}/healthz") != 200:
            assert self.process is not None and self.process.poll() is None, (
                f"host {self.number} exited:\n{self.log()[-3000:]}"
            )
            assert time.monotonic() - started < timeout, (
                f"host {self.number} not healthy:\n{self.log()[-3000:]}"
            )
            time.sleep(0.1)
        return time.monotonic() - started

    def pids(self) -> list[int]:
        """Every process in the host's namespace: what `kill -9` of the host must reach."""
        return [int(pid) for pid in _run("ip", "netns", "pids", self.netns).stdout.split()]

    def kill(self, pids: list[int] | None = None) -> list[int]:
        """SIGKILL every process of the host at once, as a power cut would; `reap()` after."""
        pids = self.pids() if pids is None else pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def reap(self) -> None:
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL whatever is left in the namespace after a bounded wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        self.kill()
        self.reap()


def _subnets_in_use() -> str:
    return _run("ip", "-o", "-4", "addr", "show").stdout


def choose_subnets(count: int) -> list[str]:
    """`count` /24s under 10.213/16 that no interface here uses (concurrent runs pick others)."""
    used = _subnets_in_use()
    start = os.getpid() % 80
    for offset in range(80):
        first = ((start + offset) % 80) * 3 + 1
        subnets = [f"10.213.{first + i}" for i in range(count)]
        if not any(f" {subnet}." in used for subnet in subnets):
            return subnets
    raise HostsUnavailable("no free /24 under 10.213.0.0/16 for the test hosts")


@contextlib.contextmanager
def namespaces(folder: Path, count: int = 3) -> Iterator[list[Host]]:
    """`count` hosts, each a namespace with `eth0` at .2 and the root side of its veth at .1."""
    if os.geteuid() != 0:
        raise HostsUnavailable(
            "the multi-host test needs root to make Linux network namespaces (ip netns add); "
            "run tests/run as root, e.g. in a container or CI"
        )
    tag = os.getpid()
    subnets = choose_subnets(2 * count)
    hosts = [
        Host(
            i,
            f"polls-h{i}-{tag}",
            f"polls{i}-{tag}",
            subnet,
            f"polls{i}d-{tag}",
            db_subnet,
            folder / f"host{i}",
        )
        for i, (subnet, db_subnet) in enumerate(zip(subnets[:count], subnets[count:], strict=True), start=1)
    ]
    try:
        for host in hosts:
            host.folder.mkdir()
            try:
                _run("ip", "netns", "add", host.netns)
            except (subprocess.CalledProcessError, FileNotFoundError) as exc:
                reason = getattr(exc, "stderr", None) or str(exc)
                raise HostsUnavailable(
                    f"cannot make a network namespace (ip netns add): {reason.strip()}"
                ) from None
            _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            _run("ip", "addr", "add", f"{host.gateway}/24", "dev", host.veth)
            _run("ip", "link", "set", host.veth, "up")
            _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
            _run(
                "ip", "link", "add", host.db_veth, "type", "veth", "peer", "name", "db0", "netns", host.netns
            )
            _run("ip", "addr", "add", f"{host.db_gateway}/24", "dev", host.db_veth)
            _run("ip", "link", "set", host.db_veth, "up")
            _run("ip", "-n", host.netns, "addr", "add", f"{host.db_subnet}.2/24", "dev", "db0")
            _run("ip", "-n", host.netns, "link", "set", "db0", "up")
            _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        yield hosts
    finally:
        for host in hosts:
            # A namespace lives on while a process is in it: kill those first, then remove by name.
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                host.stop()
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "del", host.db_veth], capture_output=True, timeout=30)
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, timeout=30)


@dataclass
class Database:
    """PostgreSQL on the database machine (the root namespace), set up as the docs say: its
    own addresses on every host's database link, the shipped hba lines, then `init-db`."""

    folder: Path
    addresses: list[str]  # the machine's private addresses: the root side of each database link
    subnets: list[str]  # the app hosts' side of those links, for pg_hba.conf
    port: int = field(default_factory=free_port)  # on 127.0.0.1 too: one free there

    @property
    def pgdata(self) -> Path:
        return self.folder / "pgdata"

    @property
    def admin_url(self) -> str:
        """The superuser over the Unix socket, as `sudo -u postgres` has it on the machine."""
        return f"postgresql://{pgserver.SUPERUSER}@/{pgserver.SUPERUSER}?host={self.pgdata}&port={self.port}"

    @property
    def url(self) -> str:
        """The app's role straight to PostgreSQL, on the machine itself: init-db, and the
        test's own counting (no app host's link on the way)."""
        return self.url_from("127.0.0.1")

    def url_from(self, address: str) -> str:
        """The app's role straight to PostgreSQL at `address` (a host's LISTEN connection)."""
        return f"postgresql://{DB_USER}:{DB_PASSWORD}@{address}:{self.port}/{DB_NAME}"

    def start(self) -> None:
        """Make the data directory with the wheel, add the shipped settings and hba lines,
        and start it with them (the wheel itself listens on its Unix socket only)."""
        pgserver.start(self.pgdata)  # initdb as the wheel does it (its system user, trust locally)
        pgserver.stop(self.pgdata)
        conf_d = self.pgdata / "conf.d"  # as Debian's postgresql.conf has it
        conf_d.mkdir()
        source = POSTGRESQL_CONF.read_text()
        (conf_d / "polls.conf").write_text(postgresql_conf(source, self.addresses, self.port))
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_dir = 'conf.d'\n")
        shutil.chown(conf_d, SERVER_USER)
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(pg_hba(PG_HBA.read_text(), self.subnets) + hba.read_text())  # above initdb's
        log = self.pgdata / "server.log"
        subprocess.run(
            [
                str(pgserver.bin_dir() / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-o",
                f"-k {self.pgdata}",  # the socket where the superuser connects
                "-l",
                str(log),
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=90,
            user=SERVER_USER,
        )

    def create_schema(self) -> None:
        """`init-db` on the database machine, straight to PostgreSQL: role, database, schema."""
        env = {**os.environ, "POLLS_DATABASE_URL": self.url}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aiohttpdemo_polls",
                "init-db",
                "-c",
                str(APP_CONFIG),
                "--admin-url",
                self.admin_url,
            ],
            cwd=settings.PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def scram_secret(self) -> str:
        """The app role's password as PostgreSQL stores it: what PgBouncer's auth file holds."""
        conn = psycopg2.connect(self.admin_url)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (DB_USER,))
                (secret,) = cursor.fetchone()
        finally:
            conn.close()
        assert secret.startswith("SCRAM-SHA-256$"), "password_encryption must be scram-sha-256"
        return secret

    def stop(self) -> None:
        pgserver.stop(self.pgdata)


@dataclass
class PgBouncer:
    """Debian's pgbouncer on the database machine, from the shipped ini and auth file, run as
    the server's user."""

    folder: Path
    addresses: list[str]  # as PostgreSQL's: the root side of each database link
    postgres_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def url_from(self, address: str) -> str:
        """The app's role through PgBouncer at `address` (a host's pool)."""
        return f"postgresql://{DB_USER}:{DB_PASSWORD}@{address}:{self.port}/{DB_NAME}"

    def start(self, secret: str) -> None:
        """Write its two files (the auth file readable by the server's user alone), start it,
        and wait until it lets the app's role in."""
        if not os.access(PGBOUNCER, os.X_OK):
            raise HostsUnavailable(
                f"pgbouncer is not installed at {PGBOUNCER}: run tests/install-hosts (as root)"
            )
        self.folder.mkdir()
        shutil.chown(self.folder, SERVER_USER)  # its log, pid file and socket
        userlist = self.folder / "userlist.txt"
        userlist.write_text(pgbouncer_userlist(PGBOUNCER_USERLIST.read_text(), secret))
        shutil.chown(userlist, SERVER_USER)
        userlist.chmod(0o600)
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(
            pgbouncer_ini(
                PGBOUNCER_INI.read_text(), self.addresses, self.port, self.postgres_port, self.folder
            )
        )
        with (self.folder / "pgbouncer.out").open("wb") as out:
            self.process = subprocess.Popen(
                [PGBOUNCER, str(ini)], stdout=out, stderr=subprocess.STDOUT, user=SERVER_USER
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"pgbouncer exited:\n{self.log()}"
            with contextlib.suppress(psycopg2.OperationalError):
                psycopg2.connect(self.url_from("127.0.0.1"), connect_timeout=2).close()
                return
            assert time.monotonic() < deadline, f"pgbouncer did not let the app's role in:\n{self.log()}"
            time.sleep(0.1)

    def log(self) -> str:
        logs = [self.folder / "pgbouncer.out", self.folder / "pgbouncer.log"]
        return "\n".join(path.read_text(errors="replace") for path in logs if path.exists())[-4000:]

    def admin(self, command: str) -> list[dict[str, Any]]:
        """One command on the admin console (`psql -p 6432 -U pgbouncer_admin pgbouncer`); its rows."""
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            dbname="pgbouncer",
            user=PGBOUNCER_ADMIN,
            password=PGBOUNCER_ADMIN_PASSWORD,
        )
        try:
            conn.autocommit = True  # the console takes no BEGIN
            with conn.cursor() as cursor:
                cursor.execute(command)
                if cursor.description is None:
                    return []
                names = [column.name for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()

    def stop(self) -> None:
        """SIGINT, as Debian's unit stops it (waits for queries in flight), then SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def nginx_site(
    source: str, upstreams: list[str], http_port: int, https_port: int, tls: Path, prefix: Path
) -> str:
    """config/nginx.conf with only addresses, ports, certificate and log paths and the static
    root changed; each upstream keeps the shipped line's parameters."""
    ipv6 = _ipv6_loopback()

    def listen(port: int, v6: bool) -> str:
        return f"listen {'[::1]' if v6 else '127.0.0.1'}:{port}"

    changes = [
        (
            r"^(\s*)server 127\.0\.0\.1:8080( [^;]*)?;",
            lambda m: "\n".join(f"{m[1]}server {u}{m[2] or ''};" for u in upstreams),
            1,
        ),
        (r"^(\s*)listen 80;", lambda m: f"{m[1]}{listen(http_port, False)};", 1),
        (r"^(\s*)listen \[::\]:80;", lambda m: f"{m[1]}{listen(http_port, True)};" if ipv6 else "", 1),
        (r"^(\s*)listen 443 ssl", lambda m: f"{m[1]}{listen(https_port, False)} ssl", 1),
        (
            r"^(\s*)listen \[::\]:443 ssl",
            lambda m: f"{m[1]}{listen(https_port, True)} ssl" if ipv6 else "#",
            1,
        ),
        (rf"/etc/letsencrypt/live/{re.escape(SERVER_NAME)}/", lambda m: f"{tls}/", 2),
        (r"root /srv/aiohttpdemo_polls;", lambda m: f"root {settings.PROJECT_ROOT};", 1),
        (r"/var/log/nginx/polls-access\.log", lambda m: f"{prefix}/access.log", 1),
    ]
    return edit(source, NGINX_SITE.name, changes)


def nginx_main(source: str, prefix: Path, site: Path) -> str:
    """config/nginx-main.conf around the site file, with every path in `prefix`, as the test's
    user, with two workers, and the descriptor limit lowered to what this machine allows."""
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def nofile(m: re.Match) -> str:
        # A container may not let nginx (root without CAP_SYS_RESOURCE) go past its hard limit:
        # the test's watchers fit under any limit that lets the test open them at all.
        wanted = int(m[1])
        return f"worker_rlimit_nofile {wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)};"

    changes = [
        # Workers as the user running the test, so they read the checkout's static/ wherever it is.
        (r"^user www-data;", lambda m: f"user {pwd.getpwuid(os.geteuid()).pw_name};", 1),
        # `auto` fixed at two, so that how nginx spreads connections over the hosts (round
        # robin in each worker) does not depend on the machine the test runs on.
        (r"^worker_processes auto;", lambda m: "worker_processes 2;", 1),
        (r"^pid /run/nginx\.pid;", lambda m: f"pid {prefix}/nginx.pid;", 1),
        (r"^error_log /var/log/nginx/error\.log;", lambda m: f"error_log {prefix}/error.log notice;", 1),
        # Debian's dynamic modules name their files relative to its prefix, not ours; the site
        # needs none of them.
        (r"^include /etc/nginx/modules-enabled/\*\.conf;\n", lambda m: "", 1),
        (r"^worker_rlimit_nofile (\d+);", nofile, 1),
        (r"access_log /var/log/nginx/access\.log;", lambda m: f"access_log {prefix}/other-access.log;", 1),
        (r"^    include /etc/nginx/conf\.d/\*\.conf;\n", lambda m: f"{temp}    include {site};\n", 1),
        (r"^    include /etc/nginx/sites-enabled/\*;\n", lambda m: "", 1),  # Debian's default site: port 80
    ]
    return edit(source, NGINX_MAIN.name, changes)


@dataclass
class Nginx:
    prefix: Path
    upstreams: list[str]
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        """What a browser names as the site's origin (and sends as Host)."""
        return f"https://{SERVER_NAME}:{self.https_port}"

    def start(self) -> None:
        if not os.access(NGINX, os.X_OK):
            raise HostsUnavailable(f"nginx is not installed at {NGINX}: run tests/install-hosts (as root)")
        tls = self.prefix / "tls"
        tls.mkdir(parents=True)
        _run(
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME}",
            "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem"),
        )  # fmt: skip
        site = self.prefix / "polls.conf"
        site.write_text(
            nginx_site(
                NGINX_SITE.read_text(), self.upstreams, self.http_port, self.https_port, tls, self.prefix
            )
        )
        main = self.prefix / "nginx.conf"
        main.write_text(nginx_main(NGINX_MAIN.read_text(), self.prefix, site))
        command = [NGINX, "-c", str(main), "-p", f"{self.prefix}/", "-e", str(self.prefix / "error.log")]
        with (self.prefix / "nginx.out").open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "-g", "daemon off;"],  # in the foreground: the test's child
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not _accepts(self.https_port):
            assert self.process.poll() is None, f"nginx exited:\n{self.error_log()}"
            assert time.monotonic() < deadline, f"nginx did not listen:\n{self.error_log()}"
            time.sleep(0.05)

    def error_log(self) -> str:
        logs = [self.prefix / "nginx.out", self.prefix / "error.log"]
        return "\n".join(path.read_text(errors="replace") for path in logs if path.exists())[-4000:]

    def access_lines(self) -> list[list[str]]:
        """Access log lines (config/nginx.conf's `polls_upstream` format) split in fields: end
        (epoch s), duration, method, uri, status, "upstream, ...", nginx worker pid (each worker
        keeps its own view of which hosts are down), "upstream status, ...", client address."""
        path = self.prefix / "access.log"
        text = path.read_text() if path.exists() else ""
        complete = text[: text.rfind("\n") + 1]  # a line nginx is still writing is read later
        return [re.findall(r'"[^"]*"|\S+', line) for line in complete.splitlines()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


class SiteResolver(AbstractResolver):
    """Resolves only the site's name, to 127.0.0.1: clients use the real URL, traffic stays local."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        if host != SERVER_NAME:
            raise OSError(f"{host}: this test resolves only {SERVER_NAME}")
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        pass


def site_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A client of the site through nginx: HTTPS to 127.0.0.1, the self-signed certificate accepted."""
    limit = kwargs.pop("limit", 100)
    connector = aiohttp.TCPConnector(resolver=SiteResolver(), ssl=False, limit=limit)
    return aiohttp.ClientSession(connector=connector, **kwargs)


@dataclass
class Servers:
    """The app hosts serving, on PostgreSQL and PgBouncer: everything but nginx."""

    hosts: list[Host]
    database: Database
    pgbouncer: PgBouncer

    def environment(self, host: Host) -> dict[str, str]:
        """config/polls-host.env for `host`: its pool through PgBouncer and its LISTEN
        connection straight to PostgreSQL, both over its database link, and nginx's address
        as the host sees it as the one proxy to believe."""
        return host_environment(
            HOST_ENV.read_text(),
            host.address,
            self.pgbouncer.url_from(host.db_gateway),
            self.database.url_from(host.db_gateway),
            host.gateway,
        )

    def start_host(self, host: Host) -> float:
        """Start `host`; seconds until its /healthz answers."""
        host.start(self.environment(host))
        return host.wait_healthy()


@dataclass
class Cluster(Servers):
    nginx: Nginx


@contextlib.contextmanager
def servers(folder: Path, count: int = 3) -> Iterator[Servers]:
    """`count` hosts serving, set up in the order of docs/deployment.md's "Several hosts":
    PostgreSQL, init-db straight to it, PgBouncer with the role's secret, then the hosts."""
    with namespaces(folder, count) as hosts:
        addresses = [host.db_gateway for host in hosts]
        database = Database(folder / "postgresql", addresses, [f"{host.db_subnet}.0/24" for host in hosts])
        database.folder.mkdir()
        pgbouncer = PgBouncer(folder / "pgbouncer", addresses, database.port)
        try:
            database.start()
            database.create_schema()
            pgbouncer.start(database.scram_secret())
            running = Servers(hosts, database, pgbouncer)
            for host in hosts:
                host.start(running.environment(host))
            for host in hosts:
                host.wait_healthy()
            yield running
        finally:
            for host in hosts:  # before their database goes
                host.stop()
            pgbouncer.stop()
            database.stop()


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """Three hosts, the database, PgBouncer and nginx, all started; all stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="polls-hosts-"))
    folder.chmod(0o755)  # the server's user must reach the data directory
    try:
        with servers(folder) as running:
            nginx = Nginx(folder / "nginx", [f"{host.address}:{APP_PORT}" for host in running.hosts])
            try:
                nginx.start()
                yield Cluster(running.hosts, running.database, running.pgbouncer, nginx)
            finally:
                nginx.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
