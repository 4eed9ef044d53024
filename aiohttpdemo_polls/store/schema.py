"""The tables (SQLAlchemy Core) and the expressions every query shares. Names are the original
demo's, so a psql user finds `question` and `choice`; `ballot` and `vote` record who voted for
what. The schema itself is made by the migrations (migrate.py), which these must match.
"""

from typing import Any

import sqlalchemy as sa

# The schema's triggers notify this channel with the id of every poll a committed change
# touched (its question, choices, counters or ballots), whoever made it; EVERYTHING after
# a TRUNCATE. Each process's caches and live results listen to it (changes.py).
CHANNEL = "poll_changes"
EVERYTHING = "*"
PG_INT_MAX = 2**31 - 1
TEXT_MAX = 200
# question.results: counts shown always, once the reader voted, or once voting closed.
RESULTS = ("always", "after_vote", "after_close")
# question.kind: a question with choices, finding a date, or voters ranking the choices.
KINDS = ("choices", "dates", "ranked")
# report.reason: why someone reported a poll (the report form's choices).
REPORT_REASONS = ("spam", "illegal", "harassment", "other")
REPORT_TEXT_MAX = 1000
# audit_log.action: what the operator did, or tried to.
AUDIT_ACTIONS = ("sign_in", "sign_in_failed", "sign_out", "hide", "restore", "delete", "password_set")
# A date poll's answers, each a `vote` row: 'yes' (counted in choice.votes), 'if_need_be'
# (choice.if_need_be) and 'no' (a row, no counter). Every vote of another kind is a 'yes'.
ANSWERS = ("yes", "if_need_be", "no")
NAME_MAX = 64  # a date poll participant's name

# The migrations (migrate.py) make the schema; these definitions are what the queries use,
# and must match the newest revision (tests/store/test_migrations.py compares the two).
metadata = sa.MetaData()

question = sa.Table(
    "question",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question_text", sa.String(TEXT_MAX), nullable=False),
    sa.Column("pub_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("multiple", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("closes_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    # sha256 of the maker's private manage token; NULL for polls made with SQL or init_db.py.
    sa.Column("token_hash", sa.LargeBinary(32)),
    # When readers other than the maker see the counts (rules.may_see_counts).
    sa.Column("results", sa.Text, nullable=False, server_default=RESULTS[0]),
    # True: a voter's first ballot is final; else it may be changed while the poll is open.
    sa.Column("lock_votes", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("kind", sa.Text, nullable=False, server_default=KINDS[0]),
    # When the site's operator hid the poll (moderation); NULL: shown. A hidden poll answers 410.
    sa.Column("hidden_at", sa.DateTime(timezone=True)),
    # True: a vote needs one of the poll's voter codes (codes.py), and the ballot is the code's.
    sa.Column("requires_code", sa.Boolean, nullable=False, server_default=sa.false()),
    # A date poll's IANA zone (Europe/Berlin): its start times were typed there.
    sa.Column("timezone", sa.Text),
    # A date poll whose participants' names only its maker sees.
    sa.Column("names_hidden", sa.Boolean, nullable=False, server_default=sa.false()),
    # The option a date poll's maker settled on (settling closes the poll).
    sa.Column(
        "settled_choice_id",
        sa.Integer,
        # use_alter: choice refers to question too, and the two must not form a cycle to sort.
        sa.ForeignKey(
            "choice.id", ondelete="SET NULL", name="question_settled_choice_id_fkey", use_alter=True
        ),
    ),
    sa.Index("question_pub_date_idx", sa.text("pub_date DESC"), sa.text("id DESC")),
    sa.CheckConstraint(
        "results IN (" + ", ".join(f"'{r}'" for r in RESULTS) + ")", name="question_results_check"
    ),
    sa.CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")", name="question_kind_check"),
)

choice = sa.Table(
    "choice",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), nullable=False),
    sa.Column("choice_text", sa.String(TEXT_MAX), nullable=False),
    sa.Column("votes", sa.Integer, nullable=False, server_default="0"),  # a date poll's 'yes'
    # A date poll's option: a whole day, or a start and an end in UTC (the poll's zone says
    # where they were typed); all three NULL for the choices of other polls.
    sa.Column("day", sa.Date),
    sa.Column("starts_at", sa.DateTime(timezone=True)),
    sa.Column("ends_at", sa.DateTime(timezone=True)),
    sa.Column("if_need_be", sa.Integer, nullable=False, server_default="0"),
    # Lets `vote` name (question, choice) together, so a vote can never cross polls;
    # also the index for "a poll's choices".
    sa.UniqueConstraint("question_id", "id", name="choice_question_id_id_key"),
    sa.CheckConstraint("votes >= 0", name="choice_votes_check"),
    sa.CheckConstraint("if_need_be >= 0", name="choice_if_need_be_check"),
    sa.CheckConstraint(
        "(starts_at IS NULL) = (ends_at IS NULL) AND (day IS NULL OR starts_at IS NULL)"
        " AND ends_at > starts_at",
        name="choice_time_check",
    ),
)

ballot = sa.Table(
    "ballot",
    metadata,
    sa.Column("question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), primary_key=True),
    # The voter cookie's random id: the primary key makes one ballot per voter per poll.
    sa.Column("voter", sa.String(64), primary_key=True),
    sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # How often the voter changed it: store/votes.py applies a change only to the count it read.
    sa.Column("changes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("name", sa.String(NAME_MAX)),  # a date poll participant's name, as they gave it
)

vote = sa.Table(
    "vote",
    metadata,
    sa.Column("question_id", sa.Integer, primary_key=True),
    sa.Column("voter", sa.String(64), primary_key=True),
    sa.Column("choice_id", sa.Integer, primary_key=True),
    sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # The place a ranked ballot gives this choice (1 is best); NULL in polls of other kinds.
    sa.Column("rank", sa.SmallInteger),
    sa.Column("answer", sa.Text, nullable=False, server_default=ANSWERS[0]),
    sa.ForeignKeyConstraint(
        ["question_id", "voter"], ["ballot.question_id", "ballot.voter"], ondelete="CASCADE"
    ),
    sa.ForeignKeyConstraint(
        ["question_id", "choice_id"], ["choice.question_id", "choice.id"], ondelete="CASCADE"
    ),
    sa.Index("vote_question_id_choice_id_idx", "question_id", "choice_id"),
    sa.CheckConstraint("rank >= 1", name="vote_rank_check"),
    # Each place of a ranking once; checked at commit, as a change reorders rows one by one.
    sa.UniqueConstraint(
        "question_id",
        "voter",
        "rank",
        name="vote_question_id_voter_rank_key",
        deferrable=True,
        initially="DEFERRED",
    ),
    sa.CheckConstraint("answer IN (" + ", ".join(f"'{a}'" for a in ANSWERS) + ")", name="vote_answer_check"),
)

# One row per voter code made for a poll: its keyed hash (codes.py), never the code. A code is
# used once a ballot stands under its voter id (codes.code_voter).
voter_code = sa.Table(
    "voter_code",
    metadata,
    sa.Column("question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("code_hash", sa.LargeBinary(24), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# One row per poll made, by client address: the creation limit counts them here, so every
# process and host shares the count.
poll_creation = sa.Table(
    "poll_creation",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("client", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("poll_creation_client_created_at_idx", "client", "created_at"),
)


# A report of a poll by anyone, for the operator's moderation page. No client address: the
# limit on reports counts them in `report_filing`, which forgets them after the hour.
report = sa.Table(
    "report",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("question_id", sa.Integer, sa.ForeignKey("question.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("report_question_id_created_at_idx", "question_id", "created_at"),
    sa.CheckConstraint(
        "reason IN (" + ", ".join(f"'{r}'" for r in REPORT_REASONS) + ")", name="report_reason_check"
    ),
    sa.CheckConstraint(f"char_length(text) <= {REPORT_TEXT_MAX}", name="report_text_check"),
)


def _counter(name: str) -> sa.Table:
    """A rate limit's counter, as `poll_creation`: a row per counted request, by client address,
    deleted once it has left the limit's window (store/limits.py)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Index(f"{name}_client_created_at_idx", "client", "created_at"),
    )


# Reports filed, by client address (limits.reports_per_hour); failed sign-ins to /admin.
report_filing = _counter("report_filing")
sign_in_failure = _counter("sign_in_failure")

# The operator's password for /admin, as an Argon2 hash: one row at most (`set-admin-password`).
admin_password = sa.Table(
    "admin_password",
    metadata,
    sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("id", name="admin_password_id_check"),
)

# Signed-in /admin sessions: sha256 of the cookie's random token, so a copy of the database
# signs nobody in. Deleted on sign-out; past `expires_at` no longer accepted.
admin_session = sa.Table(
    "admin_session",
    metadata,
    sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# What the operator did and when, sign-ins and failed ones included. Append-only: a trigger
# refuses UPDATE and DELETE (migration 0008). No foreign key: a deleted poll's entries stay.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("question_id", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Index("audit_log_at_idx", sa.text("at DESC"), sa.text("id DESC")),
    sa.CheckConstraint(
        "action IN (" + ", ".join(f"'{a}'" for a in AUDIT_ACTIONS) + ")", name="audit_log_action_check"
    ),
)


# Released: its publication time has come. Published: released and not hidden by the operator,
# so it is listed, takes votes and has live results. Every page of a poll reads released ones
# (polls.published_poll) and answers 410 for a hidden one (web/content.py).
released = question.c.pub_date <= sa.func.now()
published = sa.and_(released, question.c.hidden_at.is_(None))


def percent(total: Any) -> Any:
    """A choice's share of `total` votes in percent, one decimal; 0 while there are none."""
    return sa.func.coalesce(sa.func.round(100.0 * choice.c.votes / sa.func.nullif(total, 0), 1), 0)


# True or false, never NULL (a bare `closes_at <= now()` is NULL when there is no closes_at).
closed = sa.or_(
    question.c.closed_at.isnot(None),
    sa.and_(question.c.closes_at.isnot(None), question.c.closes_at <= sa.func.now()),
)

# When voting closed: the maker's close, or `closes_at` once passed, whichever came first;
# NULL while open. Retention counts a poll's days from it.
closed_since = sa.func.least(
    question.c.closed_at,
    sa.case((question.c.closes_at <= sa.func.now(), question.c.closes_at), else_=None),
    type_=sa.DateTime(timezone=True),
)
