"""Ranked polls: each `vote` row of a ranked ballot carries the place its voter gave the
choice (1 is best). Rows of other polls keep `rank` NULL, so every existing poll, ballot and
vote stays as it was. One place per ballot holds each rank, checked at commit, so a change
that moves choices about in one statement never trips over its own rows. `vote`'s triggers
(0002) already notify on every change of it, `rank` included.

Revision ID: 0007_ranked_polls
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_ranked_polls"
down_revision = "0005_poll_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vote", sa.Column("rank", sa.SmallInteger))
    op.create_check_constraint("vote_rank_check", "vote", "rank >= 1")
    op.create_unique_constraint(
        "vote_question_id_voter_rank_key",
        "vote",
        ["question_id", "voter", "rank"],
        deferrable=True,
        initially="DEFERRED",
    )


def downgrade() -> None:
    op.drop_constraint("vote_question_id_voter_rank_key", "vote")
    op.drop_constraint("vote_rank_check", "vote")
    op.drop_column("vote", "rank")
