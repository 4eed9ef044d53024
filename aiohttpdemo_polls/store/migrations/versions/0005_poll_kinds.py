"""Each poll says what kind it is: 'choices' (a question with choices, as every poll made
so far), 'dates' (finding a date) or 'ranked' (voters rank the choices). Every existing
poll becomes 'choices', so its pages, ballots and votes stay as they were.

Revision ID: 0005_poll_kinds
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_poll_kinds"
down_revision = "0004_poll_creations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("question", sa.Column("kind", sa.Text, nullable=False, server_default="choices"))
    op.create_check_constraint("question_kind_check", "question", "kind IN ('choices', 'dates', 'ranked')")


def downgrade() -> None:
    op.drop_constraint("question_kind_check", "question")
    op.drop_column("question", "kind")
