"""The files docs/deployment.md's "Several hosts" ships are the ones the multi-host test runs,
and they still take the test's addresses: checked here in a moment and without root, where
tests/test_hosts.py needs root and a minute."""

import re
from pathlib import Path

import hosts

from aiohttpdemo_polls import settings

GUIDE = settings.PROJECT_ROOT / "docs" / "deployment.md"
RENDERED = [
    hosts.POSTGRESQL_CONF,
    hosts.PG_HBA,
    hosts.PGBOUNCER_INI,
    hosts.PGBOUNCER_USERLIST,
    hosts.HOST_ENV,
    hosts.NGINX_SITE,
    hosts.NGINX_MAIN,
]


def several_hosts_guide() -> str:
    text = GUIDE.read_text()
    return text[text.index("## Several hosts") :]


def test_every_file_the_several_hosts_guide_links_is_one_the_multi_host_test_runs():
    linked = set(re.findall(r"\]\(\.\./(config/[^)]+)\)", several_hosts_guide()))
    assert linked == {str(path.relative_to(settings.PROJECT_ROOT)) for path in RENDERED}


def test_shipped_database_files_take_the_test_addresses():
    conf = hosts.postgresql_conf(hosts.POSTGRESQL_CONF.read_text(), ["10.213.1.1", "10.213.2.1"], 54321)
    assert "listen_addresses = 'localhost,10.213.1.1,10.213.2.1'" in conf
    assert "\nport = 54321\n" in conf
    hba = hosts.pg_hba(hosts.PG_HBA.read_text(), ["10.213.1.0/24", "10.213.2.0/24"])
    app_lines = [line.split() for line in hba.splitlines() if line.startswith("host")]
    assert app_lines == [
        ["host", "polls", "polls", address, "scram-sha-256"]
        for address in ("127.0.0.1/32", "10.213.1.0/24", "10.213.2.0/24")
    ]


def test_shipped_pgbouncer_files_take_the_test_addresses_and_secrets(tmp_path: Path):
    ini = hosts.pgbouncer_ini(hosts.PGBOUNCER_INI.read_text(), ["10.213.1.1"], 16432, 54321, tmp_path)
    assert "listen_addr = 127.0.0.1,10.213.1.1\n" in ini
    assert "polls = host=127.0.0.1 port=54321 dbname=polls\n" in ini
    assert f"auth_file = {tmp_path / 'userlist.txt'}\n" in ini
    assert "pool_mode = transaction\n" in ini
    userlist = hosts.pgbouncer_userlist(hosts.PGBOUNCER_USERLIST.read_text(), "SCRAM-SHA-256$4096:s$k:k")
    users = [line for line in userlist.splitlines() if not line.startswith(";")]
    # PgBouncer's format: a name and a password or secret, each in double quotes.
    assert users == [
        '"polls" "SCRAM-SHA-256$4096:s$k:k"',
        f'"pgbouncer_admin" "{hosts.PGBOUNCER_ADMIN_PASSWORD}"',
    ]


def test_shipped_host_environment_is_one_name_value_pair_a_line():
    environment = hosts.host_environment(
        hosts.HOST_ENV.read_text(), "10.213.1.2", "postgresql://pool", "postgresql://listen", "10.213.1.1"
    )
    assert environment == {
        "POLLS_HOST": "10.213.1.2",
        "POLLS_PORT": str(hosts.APP_PORT),
        "POLLS_DATABASE_URL": "postgresql://pool",
        "POLLS_LISTEN_DATABASE_URL": "postgresql://listen",
        "POLLS_TRUSTED_PROXIES": "10.213.1.1",
    }


def test_shipped_nginx_site_takes_the_test_hosts(tmp_path: Path):
    upstreams = ["10.213.1.2:8080", "10.213.2.2:8080"]
    site = hosts.nginx_site(hosts.NGINX_SITE.read_text(), upstreams, 18080, 18443, tmp_path, tmp_path)
    assert re.search(r"server 10\.213\.1\.2:8080\b.*\n\s*server 10\.213\.2\.2:8080\b", site)
    assert f"ssl_certificate     {tmp_path}/fullchain.pem;" in site
    assert f"access_log {tmp_path}/access.log polls_upstream;" in site


def test_shipped_nginx_main_takes_the_test_paths(tmp_path: Path):
    main = hosts.nginx_main(hosts.NGINX_MAIN.read_text(), tmp_path, tmp_path / "site.conf")
    assert f"include {tmp_path / 'site.conf'};" in main
    assert "worker_connections 32768;" in main
