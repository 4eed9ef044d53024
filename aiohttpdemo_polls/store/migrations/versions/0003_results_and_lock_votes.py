"""Poll makers choose when counts are shown and whether voters may change their vote.

`question.results`: 'always' (as before), 'after_vote' or 'after_close' (rules.py reads
it). `question.lock_votes`: true keeps the old one-vote-for-good rule. `ballot.changes`
counts a voter's changes; the vote statement (votes.py) updates a ballot only if it still
holds the count it read, so two changes racing can never both apply. Existing polls keep
today's behaviour for counts ('always'); their voters may change votes from now on.

Revision ID: 0003_results_and_lock_votes
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_results_and_lock_votes"
down_revision = "0002_notify_triggers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("question", sa.Column("results", sa.Text, nullable=False, server_default="always"))
    op.create_check_constraint(
        "question_results_check", "question", "results IN ('always', 'after_vote', 'after_close')"
    )
    op.add_column("question", sa.Column("lock_votes", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("ballot", sa.Column("changes", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("ballot", "changes")
    op.drop_column("question", "lock_votes")
    op.drop_constraint("question_results_check", "question")
    op.drop_column("question", "results")
