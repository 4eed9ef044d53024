"""The schema release 1.0.0's init_db.py made: the four tables and the poll_results view.

Written out as the SQL that release's `metadata.create_all` sent, so the names of its
constraints and indexes are exactly those a released database has.

Revision ID: 0001_release_1_0
"""

from alembic import op

revision = "0001_release_1_0"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE question (
        id SERIAL NOT NULL,
        question_text VARCHAR(200) NOT NULL,
        pub_date TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        multiple BOOLEAN DEFAULT false NOT NULL,
        closes_at TIMESTAMP WITH TIME ZONE,
        closed_at TIMESTAMP WITH TIME ZONE,
        token_hash BYTEA,
        PRIMARY KEY (id)
    )""",
    "CREATE INDEX question_pub_date_idx ON question (pub_date DESC, id DESC)",
    """
    CREATE TABLE ballot (
        question_id INTEGER NOT NULL,
        voter VARCHAR(64) NOT NULL,
        cast_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        PRIMARY KEY (question_id, voter),
        FOREIGN KEY(question_id) REFERENCES question (id) ON DELETE CASCADE
    )""",
    """
    CREATE TABLE choice (
        id SERIAL NOT NULL,
        question_id INTEGER NOT NULL,
        choice_text VARCHAR(200) NOT NULL,
        votes INTEGER DEFAULT '0' NOT NULL,
        PRIMARY KEY (id),
        CONSTRAINT choice_question_id_id_key UNIQUE (question_id, id),
        CONSTRAINT choice_votes_check CHECK (votes >= 0),
        FOREIGN KEY(question_id) REFERENCES question (id) ON DELETE CASCADE
    )""",
    """
    CREATE TABLE vote (
        question_id INTEGER NOT NULL,
        voter VARCHAR(64) NOT NULL,
        choice_id INTEGER NOT NULL,
        voted_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        PRIMARY KEY (question_id, voter, choice_id),
        FOREIGN KEY(question_id, voter) REFERENCES ballot (question_id, voter) ON DELETE CASCADE,
        FOREIGN KEY(question_id, choice_id) REFERENCES choice (question_id, id) ON DELETE CASCADE
    )""",
    "CREATE INDEX vote_question_id_choice_id_idx ON vote (question_id, choice_id)",
    """
    CREATE OR REPLACE VIEW poll_results AS
    SELECT q.id AS question_id,
           q.question_text AS question,
           c.id AS choice_id,
           c.choice_text AS choice,
           c.votes,
           round(100.0 * c.votes / nullif(sum(c.votes) OVER (PARTITION BY q.id), 0), 1) AS percent
    FROM question q JOIN choice c ON c.question_id = q.id
    ORDER BY q.id, c.id""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS poll_results")
    op.execute("DROP TABLE IF EXISTS vote, ballot, choice, question CASCADE")
