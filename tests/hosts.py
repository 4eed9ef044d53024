"""Several app hosts on one machine: network namespaces, one shared PostgreSQL, nginx in front.

What operators run, started from a temporary folder: each host is the app with two processes
in a Linux network namespace of its own, all on one PostgreSQL reached over TCP, behind nginx
with the project's own config/nginx.conf. Each host has two links: one that nginx reaches it
by, and one used only for PostgreSQL, so that a host can be cut off from the database alone.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from aiohttpdemo_polls import pgserver, settings

NGINX = os.environ.get("POLLS_NGINX", "/usr/sbin/nginx")
APP_CONFIG = settings.PROJECT_ROOT / "config" / "production.yaml"
NGINX_SITE = settings.PROJECT_ROOT / "config" / "nginx.conf"
NGINX_MAIN = settings.PROJECT_ROOT / "config" / "nginx-main.conf"
SERVER_NAME = "polls.example.org"  # config/nginx.conf's, kept: clients resolve it to 127.0.0.1
APP_PORT = 8080
WORKERS = 2
DB_NAME, DB_USER, DB_PASSWORD = "polls_hosts", "polls_hosts", "hosts-secret"


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

    def start(self, database_url: str) -> None:
        """`python -m aiohttpdemo_polls --workers 2` in the namespace, on the host's own address."""
        env = {
            **os.environ,
            "POLLS_HOST": self.address,
            "POLLS_PORT": str(APP_PORT),
            "POLLS_DATABASE_URL": database_url,
        }
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
                env=env,
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
class SharedDatabase:
    """A dedicated embedded PostgreSQL listening on the root side of every host's database link."""

    folder: Path
    addresses: list[str]
    port: int = field(default_factory=free_port)

    @property
    def pgdata(self) -> Path:
        return self.folder / "pgdata"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{pgserver.SUPERUSER}@/{pgserver.SUPERUSER}?host={self.pgdata}&port={self.port}"

    def url_via(self, address: str) -> str:
        """The app's URL as a host reaches the server: over TCP, with a password."""
        return f"postgresql://{DB_USER}:{DB_PASSWORD}@{address}:{self.port}/{DB_NAME}"

    def start(self) -> None:
        """Make the data directory with the wheel, then start it on TCP with password logins.

        The wheel starts its server with `-h ""` (Unix socket only), which no config file can
        override, so the server is started again here with pg_ctl and our own addresses.
        """
        pgserver.start(self.pgdata)  # initdb as the wheel does it (its system user, trust locally)
        pgserver.stop(self.pgdata)
        hba = self.pgdata / "pg_hba.conf"
        ours = "".join(f"host all {DB_USER} {address}/24 scram-sha-256\n" for address in self.addresses)
        hba.write_text(ours + hba.read_text())  # first match wins: ours before initdb's lines
        options = f"-h {','.join(self.addresses)} -p {self.port} -k {self.pgdata} -N 200"
        user = {"user": "embedded_postgres"} if os.geteuid() == 0 else {}
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
                options,
                "-l",
                str(log),
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=90,
            **user,
        )

    def create_schema(self) -> None:
        """Role, database and schema through init_db.py, as an operator sets up a server."""
        env = {**os.environ, "POLLS_DATABASE_URL": self.url_via(self.addresses[0])}
        subprocess.run(
            [sys.executable, "init_db.py", "-c", str(APP_CONFIG), "--admin-url", self.admin_url],
            cwd=settings.PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        pgserver.stop(self.pgdata)


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
    root changed; each upstream keeps the shipped line's parameters.

    Each change must match exactly as often as expected, so a reshaped file fails here
    rather than being tested half-changed.
    """
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
    for pattern, replacement, expected in changes:
        source, found = re.subn(pattern, replacement, source, flags=re.MULTILINE)
        assert found == expected, (
            f"config/nginx.conf: expected {expected} match(es) of {pattern!r}, found {found}"
        )
    return source


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
    for pattern, replacement, expected in changes:
        source, found = re.subn(pattern, replacement, source, flags=re.MULTILINE)
        assert found == expected, (
            f"config/nginx-main.conf: expected {expected} match(es) of {pattern!r}, found {found}"
        )
    return source


@contextlib.contextmanager
def open_files_limit(needed: int) -> Iterator[None]:
    """This process's soft descriptor limit raised to the hard one (what it starts inherits it);
    restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard >= needed, (
        f"this test needs {needed} open files per process; the hard limit is {hard} (ulimit -Hn)"
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


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
class Cluster:
    hosts: list[Host]
    database: SharedDatabase
    nginx: Nginx

    def start_host(self, host: Host) -> float:
        """Start `host` on the shared database; seconds until its /healthz answers."""
        host.start(self.database.url_via(host.db_gateway))
        return host.wait_healthy()


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """Three hosts, the database and nginx, all started; all stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="polls-hosts-"))
    folder.chmod(0o755)  # the wheel's server user must reach the data directory
    database = None
    try:
        with namespaces(folder) as hosts, contextlib.ExitStack() as stack:
            database = SharedDatabase(folder, [host.db_gateway for host in hosts])
            database.start()
            database.create_schema()
            nginx = Nginx(folder / "nginx", [f"{host.address}:{APP_PORT}" for host in hosts])
            stack.callback(nginx.stop)
            nginx.start()
            running = Cluster(hosts, database, nginx)
            for host in hosts:
                host.start(database.url_via(host.db_gateway))
            for host in hosts:
                host.wait_healthy()
            yield running
    finally:
        if database is not None:
            database.stop()
        shutil.rmtree(folder, ignore_errors=True)
