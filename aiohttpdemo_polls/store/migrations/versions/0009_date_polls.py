"""Date polls ("find a date"): each option is a whole day (`choice.day`) or a start and an end
(`choice.starts_at`, `choice.ends_at`, in UTC); the poll keeps its IANA time zone, the option
its maker settled on, and whether only the maker sees names. A participant's name is on their
ballot, and each answer ('yes', 'if_need_be', 'no': 'no' is a row too) on its `vote` row, so
psql shows the grid; `choice.if_need_be` counts those answers beside `choice.votes` (yes).
Every existing vote is a 'yes', so every poll, ballot and vote stays as it was.

Revision ID: 0009_date_polls
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_date_polls"
down_revision = "0008_moderation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("question", sa.Column("timezone", sa.Text))
    op.add_column(
        "question", sa.Column("names_hidden", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("question", sa.Column("settled_choice_id", sa.Integer))
    op.add_column("choice", sa.Column("day", sa.Date))
    op.add_column("choice", sa.Column("starts_at", sa.DateTime(timezone=True)))
    op.add_column("choice", sa.Column("ends_at", sa.DateTime(timezone=True)))
    op.add_column("choice", sa.Column("if_need_be", sa.Integer, nullable=False, server_default="0"))
    op.create_check_constraint("choice_if_need_be_check", "choice", "if_need_be >= 0")
    op.create_check_constraint(
        "choice_time_check",
        "choice",
        "(starts_at IS NULL) = (ends_at IS NULL) AND (day IS NULL OR starts_at IS NULL)"
        " AND ends_at > starts_at",
    )
    # A settled option is one of the poll's own, and deleting it unsettles the poll.
    op.create_foreign_key(
        "question_settled_choice_id_fkey",
        "question",
        "choice",
        ["settled_choice_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("ballot", sa.Column("name", sa.String(64)))
    op.add_column("vote", sa.Column("answer", sa.Text, nullable=False, server_default="yes"))
    op.create_check_constraint("vote_answer_check", "vote", "answer IN ('yes', 'if_need_be', 'no')")


def downgrade() -> None:
    op.drop_constraint("vote_answer_check", "vote")
    op.drop_column("vote", "answer")
    op.drop_column("ballot", "name")
    op.drop_constraint("question_settled_choice_id_fkey", "question")
    op.drop_constraint("choice_time_check", "choice")
    op.drop_constraint("choice_if_need_be_check", "choice")
    for column in ("if_need_be", "ends_at", "starts_at", "day"):
        op.drop_column("choice", column)
    for column in ("settled_choice_id", "names_hidden", "timezone"):
        op.drop_column("question", column)
