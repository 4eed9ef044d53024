"""What the database holds, read straight and outside the app, on the tests' own database or
another server's (any SQLAlchemy engine): a table's rows, a poll's counters, its voters."""

import sqlalchemy as sa

from aiohttpdemo_polls.store import schema


def rows(engine: sa.engine.Engine, table: sa.Table) -> int:
    """How many rows `table` has."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def counters(engine: sa.engine.Engine, question_id: int) -> dict[int, int]:
    """The vote counters of a question's choices, by choice id."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(schema.choice.c.id, schema.choice.c.votes).where(
                schema.choice.c.question_id == question_id
            )
        )
        return dict(found.all())


def voters(engine: sa.engine.Engine, question_id: int) -> set[str]:
    """The voters who have a ballot on a question."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(schema.ballot.c.voter).where(schema.ballot.c.question_id == question_id)
            ).scalars()
        )
