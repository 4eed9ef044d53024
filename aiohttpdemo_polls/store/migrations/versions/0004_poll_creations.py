"""One row per poll created, by client address: the per-client creation limit counts
them in PostgreSQL, so every process and host shares the count.

Revision ID: 0004_poll_creations
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_poll_creations"
down_revision = "0003_results_and_lock_votes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_creation",
        sa.Column("id", sa.BigInteger, primary_key=True),  # bigserial
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("poll_creation_client_created_at_idx", "poll_creation", ["client", "created_at"])


def downgrade() -> None:
    op.drop_table("poll_creation")
