"""Reports and moderation: anyone's reports of a poll, the operator's hidden flag on a poll,
the /admin password and sessions, the audit log, and the counters of two rate limits.

`question.hidden_at` changes through `question`, whose triggers (0002) already tell every
process; reports are shown on no cached page, so they notify nothing. The audit log is
append-only: a trigger refuses UPDATE and DELETE, whoever sends them.

Revision ID: 0008_moderation
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_moderation"
down_revision = "0007_ranked_polls"
branch_labels = None
depends_on = None

# Frozen here: schema.py names the same values for the queries.
REPORT_REASONS = ("spam", "illegal", "harassment", "other")
AUDIT_ACTIONS = ("sign_in", "sign_in_failed", "sign_out", "hide", "restore", "delete", "password_set")
APPEND_ONLY_FUNCTION = "audit_log_append_only"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _counter(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger, primary_key=True),  # bigserial
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(f"{name}_client_created_at_idx", name, ["client", "created_at"])


def upgrade() -> None:
    op.add_column("question", sa.Column("hidden_at", sa.DateTime(timezone=True)))
    op.create_table(
        "report",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(_in("reason", REPORT_REASONS), name="report_reason_check"),
        sa.CheckConstraint("char_length(text) <= 1000", name="report_text_check"),
    )
    op.create_index("report_question_id_created_at_idx", "report", ["question_id", "created_at"])
    _counter("report_filing")
    _counter("sign_in_failure")
    op.create_table(
        "admin_password",
        sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("id", name="admin_password_id_check"),
    )
    op.create_table(
        "admin_session",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("question_id", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint(_in("action", AUDIT_ACTIONS), name="audit_log_action_check"),
    )
    op.create_index("audit_log_at_idx", "audit_log", [sa.text("at DESC"), sa.text("id DESC")])
    op.execute(f"""
CREATE FUNCTION {APPEND_ONLY_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$""")
    op.execute(
        f"CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY_FUNCTION}()"
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.execute(f"DROP FUNCTION IF EXISTS {APPEND_ONLY_FUNCTION}()")
    for table in ("admin_session", "admin_password", "sign_in_failure", "report_filing", "report"):
        op.drop_table(table)
    op.drop_column("question", "hidden_at")
