"""Voter codes: a poll may require a one-time code to vote (`question.requires_code`), and
`voter_code` keeps the keyed hash of each code made for it, never the code (store/codes.py).
Every existing poll keeps voting without codes; its ballots and votes are untouched.

Revision ID: 0010_voter_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_voter_codes"
down_revision = "0009_date_polls"
branch_labels = None
depends_on = None

# Migration 0002's trigger functions, frozen here: new codes change the manage page's count.
TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "truncate": "",
}


def upgrade() -> None:
    op.add_column(
        "question", sa.Column("requires_code", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.create_table(
        "voter_code",
        sa.Column(
            "question_id",
            sa.Integer,
            sa.ForeignKey("question.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code_hash", sa.LargeBinary(24), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    for event, transition in TRANSITIONS.items():
        function = (
            "notify_poll_changes_truncated" if event == "truncate" else "notify_poll_changes_by_question_id"
        )
        op.execute(
            f"CREATE OR REPLACE TRIGGER voter_code_notify_{event} AFTER {event.upper()} ON voter_code "
            f"{transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    op.drop_table("voter_code")  # its triggers go with it
    op.drop_column("question", "requires_code")
