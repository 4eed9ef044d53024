"""Votes arriving together, written in one statement (group commit): the one place the rules
of a vote live. One row can be updated only as fast as transactions commit one after another,
so each process writes the ballots that queue up while a batch commits as the next batch.
"""

import asyncio
import enum
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from aiopg.sa import Engine

from .. import logs, metrics
from . import codes, connections, schema
from .changes import Changes

log = logging.getLogger(__name__)

# A process reads a statement's answer only between the requests it serves, so one huge batch
# leaves it and PostgreSQL idle in turn: batches are capped, and a second writer starts only
# once enough ballots wait (taking whatever waits would only split the queue into small batches).
MAX_BATCH = 64
WRITERS = 2  # batches in flight per process
SPILL = 32  # ballots waiting before a second writer starts, or goes on after its batch

# One statement is one round trip, committing by itself, whole or not at all. In order: lock
# the polls FOR KEY SHARE (a maker's close, edit or delete in flight is waited for) and judge
# each ballot; insert each voter's first valid ballot (ON CONFLICT DO NOTHING: one per voter
# per poll, also against other processes); change the ballots of voters who ask for other
# choices (see below); insert and delete the `vote` rows; then lock the touched choices in id
# order and move each (`votes = votes + n`, n may be negative), so the hot counter is locked
# only from there to the commit. Polls, then ballots, then choices, each in order: no deadlocks.
# The outcomes are what one transaction per ballot would give: the same choices again are
# "already voted" (any choices, on a `lock_votes` poll), others a change.
# A change locks the ballot and updates it only if its `changes` count is still the one the
# statement read (its snapshot), so the `vote` rows read with it are still its own: a ballot
# changed meanwhile by another statement is left alone and its vote tried again in the next
# batch (RETRY), as is a voter's second ballot in one batch. Two changes are never applied
# from one reading, so no vote is doubled or lost. Array parameters keep the statement the
# same for any batch size, so it is prepared once per server connection (planning it cost
# more than running it). Parameters: each ballot's poll ($1), voter ($2), whether it names
# several choices ($3), whether it is a ranking ($7), a date poll participant's name ($9,
# else NULL) and its voter code's hash ($10, or NULL); then each choice asked for ($5) with
# its ballot's place ($4), in a ranking its rank ($6; else NULL), and its answer ($8: 'yes'
# but in date polls).
# A ranking goes only to a ranked poll, and a ranked poll takes only rankings; a name only to
# a date poll, whose ballot answers every option ('no' is a row too). A ballot's choices are
# compared as "choice:answer" in rank order, so a reordered ranking or a change of answer is
# a change: its kept rows take their new rank (checked unique at commit: the constraint is
# deferred) and answer, and the counters move from the old answer's to the new one's.
# A poll that `requires_code` takes a ballot only with one of its codes (codes.py), and the
# ballot's voter is then the code's, not the browser's: one ballot per code, which the code
# changes from any browser, and two browsers racing with one code meet on one ballot key.
# Every kind of poll goes through here, so every kind has the rule.
_PUBLISHED = connections.compile_once(schema.published).sql
_CLOSED = connections.compile_once(schema.closed).sql
_STATEMENT = f"""
WITH ballots AS (
    SELECT * FROM unnest($1::int[], $2::varchar[], $3::bool[], $7::bool[], $9::varchar[], $10::bytea[])
        WITH ORDINALITY AS b(question_id, browser, many, ranked, name, code_hash, idx)
), asked AS (
    SELECT * FROM unnest($4::int[], $5::int[], $6::int[], $8::text[]) AS a(idx, choice_id, rank, answer)
), polls AS (
    SELECT id, ({_CLOSED}) AS closed, multiple, lock_votes,
           kind = 'ranked' AS ranked, kind = 'dates' AS dates, requires_code
    FROM {schema.question.name} WHERE id IN (SELECT question_id FROM ballots) AND {_PUBLISHED}
    ORDER BY id FOR KEY SHARE
), judged AS (
    SELECT b.idx, b.question_id, b.name, p.id IS NOT NULL AS found, p.closed,
           CASE WHEN p.requires_code THEN '{codes.VOTER_PREFIX}' || encode(b.code_hash, 'hex')
                ELSE b.browser END AS voter,
           coalesce(p.requires_code, false) AS requires_code,
           NOT coalesce(p.requires_code, false) OR EXISTS (
               SELECT FROM {schema.voter_code.name} vc
               WHERE vc.question_id = b.question_id AND vc.code_hash = b.code_hash
           ) AS code_ok,
           -- A ranking goes only to a ranked poll; a date poll's ballot has a name and answers
           -- every option; no other ballot has a name.
           p.ranked = b.ranked AND CASE WHEN p.dates THEN b.name IS NOT NULL AND NOT EXISTS (
               SELECT FROM {schema.choice.name} c WHERE c.question_id = b.question_id
                 AND c.id NOT IN (SELECT a.choice_id FROM asked a WHERE a.idx = b.idx))
           ELSE (p.multiple OR p.ranked OR NOT b.many) AND b.name IS NULL END AS fits,
           coalesce(p.lock_votes, true) AS lock_votes,
           NOT EXISTS (
               SELECT FROM asked a
               LEFT JOIN {schema.choice.name} c ON c.id = a.choice_id AND c.question_id = b.question_id
               WHERE a.idx = b.idx AND c.id IS NULL
           ) AS choices_ok
    FROM ballots b LEFT JOIN polls p ON p.id = b.question_id
), firsts AS (
    SELECT DISTINCT ON (question_id, voter) idx, question_id, voter, name, lock_votes
    FROM judged WHERE found AND NOT closed AND code_ok AND fits AND choices_ok
    ORDER BY question_id, voter, idx
), new AS (
    INSERT INTO {schema.ballot.name} (question_id, voter, name)
    SELECT question_id, voter, name FROM firsts ORDER BY question_id, voter
    ON CONFLICT DO NOTHING
    RETURNING question_id, voter
), prior AS (
    -- Voters of this batch who had a ballot, with its answers ("choice:answer", in rank
    -- order), as of the statement's start.
    SELECT f.idx, f.question_id, f.voter, f.lock_votes, b.changes, f.name,
           b.name IS NOT DISTINCT FROM f.name AS same_name,
           ARRAY(SELECT v.choice_id || ':' || v.answer FROM {schema.vote.name} v
                 WHERE v.question_id = f.question_id AND v.voter = f.voter
                 ORDER BY v.rank, v.choice_id) AS had,
           ARRAY(SELECT a.choice_id || ':' || a.answer FROM asked a WHERE a.idx = f.idx
                 ORDER BY a.rank, a.choice_id) AS wants
    FROM firsts f JOIN {schema.ballot.name} b USING (question_id, voter)
), changing AS (
    SELECT b.question_id, b.voter FROM {schema.ballot.name} b JOIN prior p USING (question_id, voter)
    WHERE NOT p.lock_votes AND (p.had <> p.wants OR NOT p.same_name)
    ORDER BY b.question_id, b.voter FOR NO KEY UPDATE OF b
), changed AS (
    -- Only a ballot still as read: one another statement changed meanwhile fails the
    -- `changes` check on its newest version, is left alone, and its vote is tried again.
    UPDATE {schema.ballot.name} b SET changes = b.changes + 1, name = p.name
    FROM prior p
    WHERE (b.question_id, b.voter) IN (SELECT question_id, voter FROM changing)
      AND b.question_id = p.question_id AND b.voter = p.voter AND b.changes = p.changes
    RETURNING p.idx, p.question_id, p.voter, p.had, p.wants
), wanted AS (
    SELECT c.idx, c.question_id, c.voter, a.choice_id, a.rank, a.answer
    FROM changed c JOIN asked a ON a.idx = c.idx
), held AS (
    SELECT c.idx, split_part(h, ':', 1)::int AS choice_id, split_part(h, ':', 2) AS answer
    FROM changed c, unnest(c.had) AS h
), dropped AS (
    DELETE FROM {schema.vote.name} v USING changed c
    WHERE v.question_id = c.question_id AND v.voter = c.voter
      AND NOT EXISTS (SELECT FROM wanted w WHERE w.idx = c.idx AND w.choice_id = v.choice_id)
    RETURNING v.choice_id, v.answer
), reanswered AS (
    -- The same choice at another rank or with another answer: the row is kept, both changed.
    UPDATE {schema.vote.name} v SET answer = w.answer, rank = w.rank, voted_at = now()
    FROM wanted w JOIN held h USING (idx, choice_id)
    WHERE v.question_id = w.question_id AND v.voter = w.voter AND v.choice_id = w.choice_id
      AND (h.answer <> w.answer OR v.rank IS DISTINCT FROM w.rank)
    RETURNING v.choice_id, h.answer AS old, w.answer AS new
), picked AS (
    SELECT f.idx, f.question_id, f.voter, a.choice_id, a.rank, a.answer
    FROM firsts f JOIN new USING (question_id, voter) JOIN asked a ON a.idx = f.idx
    UNION ALL
    SELECT w.idx, w.question_id, w.voter, w.choice_id, w.rank, w.answer FROM wanted w
    WHERE NOT EXISTS (SELECT FROM held h WHERE h.idx = w.idx AND h.choice_id = w.choice_id)
), recorded AS (
    INSERT INTO {schema.vote.name} (question_id, voter, choice_id, rank, answer)
    SELECT question_id, voter, choice_id, rank, answer FROM picked
    RETURNING choice_id, answer
), tallies AS (
    -- What each touched choice's counters move by: `votes` counts 'yes', `if_need_be` its own.
    SELECT choice_id, sum(yes) AS yes, sum(maybe) AS maybe FROM (
        SELECT choice_id, (answer = 'yes')::int AS yes, (answer = 'if_need_be')::int AS maybe FROM recorded
        UNION ALL
        SELECT choice_id, -(answer = 'yes')::int, -(answer = 'if_need_be')::int FROM dropped
        UNION ALL
        SELECT choice_id, (new = 'yes')::int - (old = 'yes')::int,
               (new = 'if_need_be')::int - (old = 'if_need_be')::int FROM reanswered
    ) AS d GROUP BY choice_id HAVING sum(yes) <> 0 OR sum(maybe) <> 0
), locked AS (
    SELECT id FROM {schema.choice.name} WHERE id IN (SELECT choice_id FROM tallies)
    ORDER BY id FOR NO KEY UPDATE
), counted AS (
    UPDATE {schema.choice.name} c SET votes = c.votes + t.yes, if_need_be = c.if_need_be + t.maybe
    FROM tallies t WHERE c.id = t.choice_id AND c.id IN (SELECT id FROM locked)
    RETURNING c.id
)
SELECT j.idx, j.voter, j.found, j.closed, j.code_ok, j.requires_code, j.fits, j.choices_ok, j.lock_votes,
       j.idx IN (SELECT f.idx FROM firsts f JOIN new USING (question_id, voter)) AS counted,
       j.idx IN (SELECT idx FROM changed) AS changed,
       j.idx IN (SELECT idx FROM prior WHERE lock_votes OR (had = wants AND same_name)) AS unchanged,
       -- For a ballot naming a choice not in its poll: did this voter vote here before?
       -- (the statement's snapshot: ballots from before this batch)
       NOT j.choices_ok AND EXISTS (
           SELECT FROM {schema.ballot.name} x WHERE x.question_id = j.question_id AND x.voter = j.voter
       ) AS voted_before,
       -- Named here so that they run: a CTE no one reads is skipped unless it writes.
       (SELECT count(*) FROM tallies) AS tallied,
       (SELECT count(*) FROM counted) AS counters
FROM judged j
ORDER BY j.idx
"""
# A name per statement text: app versions sharing a pooler's server connections during a
# rolling upgrade never run each other's statement under one name.
_NAME = "polls_vote_batch_" + hashlib.sha256(_STATEMENT.encode()).hexdigest()[:12]
# A prepared statement lives on one server connection, and a new one (the server restarted,
# or a pooler replaced its connections or, in transaction pooling, lent another) has none. So
# each batch is one string, one implicit transaction that a pooler keeps on one server
# connection: it prepares the statement there unless it is ready, then runs it. No statement
# has to fail first, so a vote never takes an error path.
# It also refuses to start past the batch's deadline, and waits for locks only until then: a
# batch delivered late (a frozen server, a network that held it) then keeps nothing, so a
# voter already answered "not counted" is never counted afterwards.
LATE = "PV001"  # the SQLSTATE of that refusal
_RUN = f"""DO $prepare$ BEGIN
    IF clock_timestamp() > %(deadline)s THEN
        RAISE EXCEPTION 'vote batch past its deadline' USING ERRCODE = '{LATE}';
    END IF;
    PERFORM set_config('lock_timeout', %(lock_timeout)s, true);
    IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = '{_NAME}') THEN
        EXECUTE $statement$
            PREPARE {_NAME}(int[], varchar[], bool[], int[], int[], int[], bool[], text[], varchar[], bytea[])
            AS {_STATEMENT}
        $statement$;
    END IF;
END $prepare$;
EXECUTE {_NAME}(%(polls)s, %(voters)s, %(many)s, %(asked_by)s, %(asked)s, %(ranks)s, %(ranked)s,
    %(answers)s, %(names)s, %(codes)s::bytea[])"""


# Removing a ballot ("Remove my vote") follows the batch's order of locks: the poll FOR KEY
# SHARE (a close in flight is waited for, and waits for this), then the ballot FOR UPDATE, which
# a change of it (FOR NO KEY UPDATE) and a new ballot's vote rows (their foreign key's KEY SHARE)
# wait for, and this for them. Only then, in a statement of its own and so with a snapshot
# taken after every earlier change of the ballot committed, its vote rows go and their
# choices' counters drop by their answers (the choices locked in id order). A vote racing it is
# counted after it, as a first ballot: nothing is lost or counted twice.
_REMOVAL_POLL = f"""
SELECT ({_CLOSED}) AS closed, lock_votes FROM {schema.question.name}
WHERE id = %(question_id)s AND {_PUBLISHED} FOR KEY SHARE"""
_REMOVAL_BALLOT = f"""
SELECT 1 FROM {schema.ballot.name} WHERE question_id = %(question_id)s AND voter = %(voter)s FOR UPDATE"""
_REMOVAL = f"""
WITH dropped AS (
    DELETE FROM {schema.vote.name} WHERE question_id = %(question_id)s AND voter = %(voter)s
    RETURNING choice_id, answer
), locked AS (
    SELECT id FROM {schema.choice.name} WHERE id IN (SELECT choice_id FROM dropped)
    ORDER BY id FOR NO KEY UPDATE
), counted AS (
    -- `votes` counts 'yes' (every row but a date poll's), `if_need_be` a date poll's own.
    UPDATE {schema.choice.name} c
    SET votes = c.votes - (d.answer = 'yes')::int, if_need_be = c.if_need_be - (d.answer = 'if_need_be')::int
    FROM dropped d WHERE c.id = d.choice_id AND c.id IN (SELECT id FROM locked)
    RETURNING c.id
), gone AS (
    DELETE FROM {schema.ballot.name} WHERE question_id = %(question_id)s AND voter = %(voter)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM dropped) AS dropped, (SELECT count(*) FROM counted) AS counted,
       (SELECT count(*) FROM gone) AS gone"""


class RemovalOutcome(enum.Enum):
    REMOVED = "removed"
    NO_BALLOT = "no ballot"  # this voter has none in this poll (never voted, or removed it)
    CLOSED = "closed"  # voting has closed: the ballots are the result now
    LOCKED = "locked"  # the poll locks votes: a ballot is final, so it is not taken back
    NOT_FOUND = "not found"  # no such published poll


class VoteOutcome(enum.Enum):
    COUNTED = "counted"
    CHANGED = "changed"  # the voter's earlier choices were replaced by these
    ALREADY_VOTED = "already voted"
    INVALID_CHOICE = "invalid choice"
    CLOSED = "closed"
    CODE_REFUSED = "code refused"  # the poll requires a voter code, and this is none of its codes
    CODE_USED = "code used"  # the code's ballot stands, and the poll locks votes
    # Sent, then the connection was lost (or the deadline came) with no answer, even after
    # sending again: it may have been committed. The ballot key keeps a retry single.
    UNKNOWN = "unknown"
    RETRY = "retry"  # only inside the batcher: decided in the next batch, never returned


# A vote raced by other changes of the same ballot this often is refused with an error
# rather than tried for ever (each try is a batch in which another change committed).
MAX_RETRIES = 100
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out: the deadline came while it waited
# Seconds before a ballot's deadline after which the database refuses its batch, left for
# the answer to travel back: a commit the app hears of after the deadline would be a lie.
ANSWER_MARGIN = 0.2


class VoteNotCounted(Exception):
    """The ballot could not be written, even alone; nothing of it was kept."""


class _Ballot:
    __slots__ = (
        "answers",
        "choices",
        "code_hash",
        "deadline",
        "future",
        "in_flight",
        "many",
        "name",
        "question_id",
        "ranked",
        "resent",
        "retries",
        "uncertain",
        "voter",
    )

    def __init__(
        self,
        question_id: int,
        choices: list[int],
        many: bool,
        voter: str,
        future: asyncio.Future,
        deadline: float,
        answers: list[str],
        name: str | None = None,
        ranked: bool = False,
        code_hash: bytes | None = None,
    ) -> None:
        self.question_id = question_id
        self.code_hash = code_hash  # the voter code's hash (codes.code_hash), if one came
        self.choices = choices  # a ranking: best first; else in id order
        self.answers = answers  # each choice's answer: 'yes', or a date poll's answer
        self.name = name  # a date poll participant's name; None for other ballots
        self.many = many  # more than one choice was sent: only a `multiple` poll takes that
        self.ranked = ranked  # a ranking, for a ranked poll only
        self.voter = voter
        self.future = future
        self.deadline = deadline  # loop time after which it is answered, and never written
        self.retries = 0
        self.in_flight = False  # sent in the batch now running, no answer yet
        self.uncertain = False  # an attempt ended with no answer: it may have been committed
        self.resent = False  # sent again after a lost connection (once at most)

    def holds(self) -> tuple:
        """What the voter's ballot is once this one is in: its answers, and a name."""
        return (self.choices, self.answers, self.name)


def ballot_choices(choice_ids: Iterable[int]) -> list[int]:
    """The choices a ballot for these records: each once, in id order."""
    return sorted(set(choice_ids))


def possible_answers(answers: Mapping[int, str], name: str) -> bool:
    """Whether these can be a date poll's ballot: a name of 1 to NAME_MAX characters, and an
    answer of ANSWERS for each id a choice can have. Whether every option is answered is for
    the batch statement to say (it reads the poll)."""
    return (
        0 < len(name) <= schema.NAME_MAX
        and bool(answers)
        and all(type(c) is int and 0 < c <= schema.PG_INT_MAX for c in answers)
        and all(a in schema.ANSWERS for a in answers.values())
    )


class VoteBatcher:
    """The process's vote writer: `await cast(...)` returns once the ballot is committed, and
    the polls of each committed batch go on the bus of changes `changes` at once."""

    def __init__(
        self,
        engine: Engine,
        changes: Changes,
        *,
        max_batch: int = MAX_BATCH,
        writers: int = WRITERS,
        spill: int = SPILL,
        timeout: float | None = None,
    ) -> None:
        self.engine = engine
        self.changes = changes
        # Seconds from a vote's arrival to its answer, whatever happens: queued, sent or retried.
        self.timeout = engine.timeout if timeout is None else timeout
        self.max_batch = max_batch
        self.writers = writers
        self.spill = spill
        self._queue: list[_Ballot] = []
        self._running = 0
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def cast(
        self,
        question_id: int,
        choice_ids: Sequence[int],
        voter: str,
        code_hash: bytes | None = None,
        *,
        answers: Mapping[int, str] | None = None,
        name: str | None = None,
    ) -> VoteOutcome:
        """Count one voter's ballot for these choices, all or nothing, together with the
        ballots arriving meanwhile. More than one choice for a poll that is not `multiple`
        is INVALID_CHOICE, so a vote needs no read of its poll before it is queued. On a poll
        that requires a voter code, the ballot is `code_hash`'s code's (CODE_REFUSED without
        one of its codes), whatever `voter` is.

        A date poll's ballot gives `answers` (choice id -> 'yes', 'if_need_be' or 'no', every
        option of the poll) and the participant's `name` instead of `choice_ids`."""
        if answers is not None or name is not None:
            if answers is None or name is None or not possible_answers(answers, name):
                return VoteOutcome.INVALID_CHOICE
            wanted = sorted(answers)
            said = [answers[c] for c in wanted]
            many = True
        else:
            wanted = ballot_choices(choice_ids)
            said = [schema.ANSWERS[0]] * len(wanted)
            many = len(choice_ids) > 1
        if not wanted or any(not 0 < c <= schema.PG_INT_MAX for c in wanted):
            return VoteOutcome.INVALID_CHOICE
        if not 0 < question_id <= schema.PG_INT_MAX:
            return VoteOutcome.INVALID_CHOICE
        return await self._queued(question_id, wanted, many, voter, said, name, code_hash=code_hash)

    async def cast_ranking(
        self, question_id: int, ranking: Sequence[int], voter: str, code_hash: bytes | None = None
    ) -> VoteOutcome:
        """Count one voter's ranking (choice ids, best first) for a ranked poll, as `cast`
        counts a ballot: the same batches, the same one ballot per voter (or voter code), the
        same outcomes. A choice named twice, or a ranked poll's ballot sent to another kind,
        is INVALID_CHOICE."""
        wanted = list(ranking)
        if (
            not wanted
            or len(set(wanted)) != len(wanted)
            or any(not 0 < c <= schema.PG_INT_MAX for c in wanted)
        ):
            return VoteOutcome.INVALID_CHOICE
        if not 0 < question_id <= schema.PG_INT_MAX:
            return VoteOutcome.INVALID_CHOICE
        said = [schema.ANSWERS[0]] * len(wanted)
        return await self._queued(
            question_id, wanted, len(wanted) > 1, voter, said, None, ranked=True, code_hash=code_hash
        )

    async def _queued(
        self,
        question_id: int,
        wanted: list[int],
        many: bool,
        voter: str,
        said: list[str],
        name: str | None,
        ranked: bool = False,
        code_hash: bytes | None = None,
    ) -> VoteOutcome:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        deadline = loop.time() + self.timeout
        ballot = _Ballot(question_id, wanted, many, voter, future, deadline, said, name, ranked, code_hash)
        self._queue.append(ballot)
        if not self._running or (self._running < self.writers and len(self._queue) >= self.spill):
            self._running += 1
            self._idle.clear()
            task = asyncio.ensure_future(self._write_queue())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A request cancelled meanwhile cancels only this future, not the ballot: that is
        # written (or not) whole with its batch either way.
        return await future

    async def remove(self, question_id: int, voter: str) -> RemovalOutcome:
        """Take this voter's ballot back from an open poll (a date poll's row too): its votes,
        and their answers from the counters, all or nothing; the bus hears of it once
        committed. Not batched: removals are rare, each waits for the ballot's lock (_REMOVAL)."""
        if not 0 < question_id <= schema.PG_INT_MAX:
            return RemovalOutcome.NOT_FOUND
        params = {"question_id": question_id, "voter": voter}
        async with (
            asyncio.timeout(self.timeout),
            connections.connection(self.engine) as conn,
            self.changes.transaction(conn) as changed,
        ):
            await conn.execute(f"SET LOCAL lock_timeout = '{max(1, int(self.timeout * 1000))}ms'")
            poll = await (await conn.execute(_REMOVAL_POLL, params)).first()
            if poll is None:
                return RemovalOutcome.NOT_FOUND
            if poll.closed:
                return RemovalOutcome.CLOSED
            if poll.lock_votes:
                return RemovalOutcome.LOCKED
            if await (await conn.execute(_REMOVAL_BALLOT, params)).first() is None:
                return RemovalOutcome.NO_BALLOT
            row = await (await conn.execute(_REMOVAL, params)).first()
            if row.counted != row.dropped or row.gone != 1:  # the foreign keys make this an error first
                log.error("ballot removal dropped %d votes, %d counters", row.dropped, row.counted)
            changed.add(question_id)
        return RemovalOutcome.REMOVED

    async def wait_idle(self) -> None:
        """Until every queued ballot is written (graceful shutdown)."""
        await self._idle.wait()

    async def _write_queue(self) -> None:
        try:
            # One turn of the loop lets requests parsed together join this batch.
            await asyncio.sleep(0)
            # The last writer running takes everything; another only a full enough queue.
            while self._queue and (self._running == 1 or len(self._queue) >= self.spill):
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                try:
                    await self._write(batch)
                except Exception:
                    # A fault of ours, not the database's: this writer must go on, and every
                    # voter of the batch still hears now. The ballot key keeps a retry single.
                    log.exception("vote batch of %d failed: unexpected error", len(batch))
                    _give_up(batch, "unexpected error")
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    async def _write(self, batch: list[_Ballot]) -> None:
        # A ballot too close to its deadline is answered now and never sent (again).
        last_send = asyncio.get_running_loop().time() + ANSWER_MARGIN
        late = [b for b in batch if b.deadline <= last_send]
        if late:
            log.warning("%d votes not sent: their deadline passed", len(late))
            _give_up(late, "deadline passed")
            batch = [b for b in batch if b.deadline > last_send]
            if not batch:
                return
        try:
            outcomes = await self._transaction(batch)
        except psycopg2.Error as exc:
            if connections.ordinary_sql_error(exc):
                await self._refused(batch, exc)
            else:
                self._lost(batch, exc)
            return
        except TimeoutError:
            # No connection, or no answer, by the batch's deadline; had it arrived later, the
            # database would have refused it. Sent and unanswered: it may have been committed.
            log.warning("vote batch of %d: the database did not answer in time", len(batch))
            _in_doubt(batch)
            _give_up(batch, "database timeout")
            return
        except Exception:
            _in_doubt(batch)
            raise
        again = []
        for ballot, outcome in zip(batch, outcomes, strict=True):
            ballot.in_flight = False  # its outcome is known now
            if outcome is not VoteOutcome.RETRY:
                _settle(ballot.future, outcome)
            elif ballot.retries >= MAX_RETRIES:
                log.warning("vote not counted: its ballot kept changing under it")
                _settle(ballot.future, exception=VoteNotCounted("too many concurrent changes"))
            else:
                ballot.retries += 1
                again.append(ballot)
        metrics.vote_batch(outcomes)  # after the answers, before the retries are queued
        # First in line: the writer running this batch takes them next (it is the one
        # that goes on while anything waits).
        self._queue[:0] = again

    async def _refused(self, batch: list[_Ballot], exc: psycopg2.Error) -> None:
        """The database answered with an error and kept nothing of this attempt."""
        for ballot in batch:
            ballot.in_flight = False
        if len(batch) == 1 or exc.pgcode in (LATE, LOCK_NOT_AVAILABLE):
            reason = logs.first_line(exc)
            log.warning("%d votes not counted: %s", len(batch), reason)
            _give_up(batch, reason)
            return
        # One bad ballot fails the statement for all: find it by writing them one by one.
        log.warning("vote batch of %d failed (%s); retrying one by one", len(batch), type(exc).__name__)
        for ballot in batch:
            await self._write([ballot])

    def _lost(self, batch: list[_Ballot], exc: psycopg2.Error) -> None:
        """The connection failed: send each ballot once more, on another connection, while
        its deadline allows. The ballot key makes that safe, and the new attempt's outcome
        tells whether the lost one had been committed."""
        _in_doubt(batch)
        again = [b for b in batch if not b.resent]
        for ballot in again:
            ballot.resent = True
        log.warning(
            "vote batch of %d: connection lost (%s); sending %d again",
            len(batch),
            logs.first_line(exc),
            len(again),
        )
        _give_up([b for b in batch if b not in again], logs.first_line(exc))
        self._queue[:0] = again

    async def _transaction(self, batch: list[_Ballot]) -> list[VoteOutcome]:
        asked_by: list[int] = []  # for each choice asked for, its ballot's place (from 1)
        asked: list[int] = []
        answers: list[str] = []
        ranks: list[int | None] = []  # each choice's place in its ranking; None outside rankings
        for i, b in enumerate(batch, 1):
            asked_by += [i] * len(b.choices)
            asked += b.choices
            answers += b.answers
            ranks += range(1, len(b.choices) + 1) if b.ranked else [None] * len(b.choices)
        # Waiting for a pooled connection counts too: across a lost network every new one
        # hangs for the whole timeout, one after another, and the proxy gives up first.
        loop = asyncio.get_running_loop()
        deadline = min(b.deadline for b in batch)
        async with asyncio.timeout_at(deadline) as timer, connections.connection(self.engine) as conn:
            # The database's own clock judges it: the time left, counted from now on ours.
            left = deadline - ANSWER_MARGIN - loop.time()
            for ballot in batch:
                ballot.in_flight = True
            rows = await _execute(
                conn,
                deadline=datetime.now(UTC) + timedelta(seconds=left),
                lock_timeout=f"{max(1, int(left * 1000))}ms",
                polls=[b.question_id for b in batch],
                voters=[b.voter for b in batch],
                many=[b.many for b in batch],
                asked_by=asked_by,
                asked=asked,
                ranks=ranks,
                ranked=[b.ranked for b in batch],
                codes=[b.code_hash for b in batch],
                answers=answers,
                names=[b.name for b in batch],
            )
            # Answered: handing the connection back must not become a timeout.
            timer.reschedule(None)
        outcomes = _outcomes(batch, rows)
        if rows[0].counters != rows[0].tallied:  # the foreign keys make this an error first
            log.error("vote batch counted %d of %d choices", rows[0].counters, rows[0].tallied)
        changed = sorted(
            {
                b.question_id
                for b, o in zip(batch, outcomes, strict=True)
                if o in (VoteOutcome.COUNTED, VoteOutcome.CHANGED)
            }
        )
        if changed:
            # The bus keeps a subscriber's fault to itself: the voters hear "counted" all the same.
            self.changes.changed(changed)
        return outcomes


def _outcomes(batch: list[_Ballot], rows: list) -> list[VoteOutcome]:
    """Each ballot's outcome from the batch statement's row for it (rows in batch order)."""
    # Keyed by the ballot's voter as the statement chose it: the browser's, or its code's.
    pairs = list(zip(batch, rows, strict=True))
    counted_at = {(b.question_id, row.voter): row.idx for b, row in pairs if row.counted or row.changed}
    # What each voter's ballot holds once this batch commits, where the batch decided it.
    holds = {
        (b.question_id, row.voter): b.holds()
        for b, row in pairs
        if row.counted or row.changed or row.unchanged
    }
    outcomes = [_outcome(b, row, counted_at) for b, row in pairs]
    return [
        # A repeat, in one batch, of the choices the voter's ballot now holds: as if sent after it.
        VoteOutcome.ALREADY_VOTED
        if o is VoteOutcome.RETRY and holds.get((b.question_id, row.voter)) == b.holds()
        else o
        for (b, row), o in zip(pairs, outcomes, strict=True)
    ]


def _outcome(b: _Ballot, row: Any, counted_at: dict[tuple[int, str], int]) -> VoteOutcome:
    outcome = _judged(b, row, counted_at)
    if outcome is VoteOutcome.ALREADY_VOTED and row.requires_code and row.lock_votes:
        return VoteOutcome.CODE_USED  # the code cast its one ballot, for good
    return outcome


def _judged(b: _Ballot, row: Any, counted_at: dict[tuple[int, str], int]) -> VoteOutcome:
    if not row.found:
        return VoteOutcome.INVALID_CHOICE
    if row.closed:
        return VoteOutcome.CLOSED
    if not row.code_ok:
        return VoteOutcome.CODE_REFUSED
    if not row.fits:
        return VoteOutcome.INVALID_CHOICE
    if not row.choices_ok:
        # A choice not in its poll: "already voted" if the voter's ballot was in first
        # (the ballot is checked before the choices), else refused.
        earlier = counted_at.get((b.question_id, row.voter), row.idx)
        voted = row.voted_before or earlier < row.idx
        return VoteOutcome.ALREADY_VOTED if voted else VoteOutcome.INVALID_CHOICE
    if row.counted:
        return VoteOutcome.COUNTED
    if row.changed:
        return VoteOutcome.CHANGED
    if row.unchanged:
        return VoteOutcome.ALREADY_VOTED  # the same choices again, or a poll that locks votes
    if row.lock_votes:
        return VoteOutcome.ALREADY_VOTED  # an earlier ballot of this voter's, here or elsewhere
    # A change that raced another one of the same ballot (or the voter's second ballot in
    # this batch): decided in the next batch, against the ballot as it is then.
    return VoteOutcome.RETRY


async def _execute(conn: Any, **params: Any) -> list:
    """The batch statement's rows, one per ballot in batch order."""
    return await (await conn.execute(_RUN, params)).fetchall()


def _in_doubt(batch: list[_Ballot]) -> None:
    """An attempt ended with no answer: those of its ballots that were sent may be committed."""
    for ballot in batch:
        if ballot.in_flight:
            ballot.in_flight = False
            ballot.uncertain = True


def _give_up(batch: list[_Ballot], reason: str) -> None:
    """Answer now: UNKNOWN where an attempt may have been committed, else not counted."""
    for ballot in batch:
        if ballot.uncertain:
            _settle(ballot.future, VoteOutcome.UNKNOWN)
        else:
            _settle(ballot.future, exception=VoteNotCounted(reason))


def _settle(
    future: asyncio.Future, outcome: VoteOutcome | None = None, exception: BaseException | None = None
) -> None:
    if future.done():  # its request was cancelled; the ballot was written (or not) regardless
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(outcome)
