"""Alembic's entry point: runs the migrations on the connection migrate.py hands over (no
alembic.ini), so the schema has one way in, the same for init-db and the tests.
"""

from alembic import context

from aiohttpdemo_polls.store import migrate, schema

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=schema.metadata,
    **migrate.CONTEXT_OPTIONS,
)
with context.begin_transaction():
    context.run_migrations()
