"""Triggers that notify `poll_changes` with a poll's id on every committed change to it.

Whoever makes the change (the app, psql, another host), every process's caches and live
results hear of it (notices.py listens). Statement-level triggers, so a vote batch of many
ballots notifies once per poll; a TRUNCATE notifies '*' (everything). CREATE OR REPLACE:
databases set up between issue 11 and Alembic already have them, and are stamped at 0001.

Revision ID: 0002_notify_triggers
"""

from alembic import op

revision = "0002_notify_triggers"
down_revision = "0001_release_1_0"
branch_labels = None
depends_on = None

# Frozen here: db.CHANNEL and db.EVERYTHING name the same values for the listener.
CHANNEL = "poll_changes"
EVERYTHING = "*"
POLL_KEY = {"question": "id", "choice": "question_id", "ballot": "question_id", "vote": "question_id"}
TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "truncate": "",  # no rows to tell: EVERYTHING
}
KEYS = sorted(set(POLL_KEY.values()))
TRUNCATE_FUNCTION = "notify_poll_changes_truncated"


def notify_function(key: str) -> str:
    """The trigger function for tables whose `key` column names the poll."""
    notify = f"PERFORM pg_notify('{CHANNEL}', CAST(k AS text)) FROM"
    return f"""
CREATE OR REPLACE FUNCTION notify_poll_changes_by_{key}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {notify} (SELECT DISTINCT {key} FROM new_rows) AS d(k);
    ELSIF TG_OP = 'DELETE' THEN
        {notify} (SELECT DISTINCT {key} FROM old_rows) AS d(k);
    ELSE  -- UPDATE: a row moved to another poll changes both
        {notify} (SELECT {key} FROM old_rows UNION SELECT {key} FROM new_rows) AS d(k);
    END IF;
    RETURN NULL;
END $$"""


def notify_trigger(table: str, key: str, event: str) -> str:
    function = TRUNCATE_FUNCTION if event == "truncate" else f"notify_poll_changes_by_{key}"
    return (
        f"CREATE OR REPLACE TRIGGER {table}_notify_{event} AFTER {event.upper()} ON {table} "
        f"{TRANSITIONS[event]} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


def upgrade() -> None:
    for key in KEYS:
        op.execute(notify_function(key))
    op.execute(f"""
CREATE OR REPLACE FUNCTION {TRUNCATE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '{EVERYTHING}');
    RETURN NULL;
END $$""")
    for table, key in POLL_KEY.items():
        for event in TRANSITIONS:
            op.execute(notify_trigger(table, key, event))


def downgrade() -> None:
    functions = ", ".join([*(f"notify_poll_changes_by_{key}()" for key in KEYS), f"{TRUNCATE_FUNCTION}()"])
    op.execute(f"DROP FUNCTION IF EXISTS {functions} CASCADE")
