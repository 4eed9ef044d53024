"""The schema's history as Alembic migrations (env.py, versions/), run by migrate.py."""
