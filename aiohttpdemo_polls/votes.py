"""Votes arriving together, written in one statement (group commit).

PostgreSQL can update one row only so many times a second (each update of the hot
choice's counter waits for the previous transaction to commit), and every commit waits
for the disk. So each process writes ballots in batches: while one batch commits, the
ballots arriving meanwhile queue up, and the next batch takes them all (up to
`max_batch`). Under light load a ballot goes alone at once; under heavy load batches grow
by themselves and throughput follows.

A batch is one SQL statement (`_STATEMENT`), so one round trip: it commits by itself, whole
or not at all. A busy process gets back to a database answer only between the requests
it is serving, so every round trip a batch makes costs its ballots a turn of the event
loop; one statement made hot votes about a quarter faster than five (begin, check,
ballots, counts, commit). In that statement, in this order:

1. which of its polls are published, and which closed, locked `FOR KEY SHARE` (a
   maker's close, edit or delete in flight is waited for, and nothing counts after it);
   and whether each ballot's choices are its poll's;
2. `INSERT INTO ballot ... ON CONFLICT DO NOTHING RETURNING` for the first valid ballot
   of each voter: one ballot per voter per poll, also against batches committing
   elsewhere at the same moment;
3. the `vote` rows are inserted, and once they all are (the counts are an aggregate
   over them), the choices are locked in id order and each one's count added
   (`votes = votes + n`): the hot counter is locked only from there to the commit (the
   schema's triggers then notify each poll once, at commit). Locking polls, then
   ballots, then choices, each in order, keeps concurrent batches (several processes
   too) from deadlocking. The `vote` rows' foreign key to their choice makes a
   choice deleted meanwhile an error, so counters and rows never disagree.

Every request is answered only after its batch has committed. The outcomes are what one
transaction per ballot would give: a voter appearing twice in one batch is counted once
and the second is "already voted", as it would be in two transactions; invalid choices and closed polls are
refused without touching the others. If a batch fails (deadlock, lost connection...)
nothing of it is kept and its ballots are retried one by one; a ballot that fails alone
gets the error (its request shows an error page) and nothing of it is kept: never lost
silently, never doubled (the ballot key).
"""

import asyncio
import enum
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg2
import psycopg2.errors
from aiopg.sa import Engine

from . import db, logs

log = logging.getLogger(__name__)

# How batches are cut, measured with wrk on the 2-core machine (one hot choice, one process).
# A batch is one statement, and the process reads its answer only between the requests it
# serves: a batch of 128 waited 13 ms for a 5 ms statement while the process answered the
# previous 128 votes. So a batch takes at most MAX_BATCH ballots, and a second writer
# starts only once SPILL ballots wait (a second writer taking whatever waits only split
# the queue into small batches): at 256 connections ~5.7k votes/s became ~8.5k, at 64
# connections it stayed at ~7k.
MAX_BATCH = 64
WRITERS = 2  # batches in flight per process
SPILL = 32  # ballots waiting before a second writer starts, or goes on after its batch

# Plain SQL with array parameters: the statement is the same for any batch size, so it
# is prepared once per server connection (planning it took longer than running it) and
# nothing is compiled per request. The rules for "published" and "closed" are db's, compiled once.
# Parameters: each ballot's poll ($1), voter ($2) and whether it names several choices
# ($3); then each choice asked for ($5) with its ballot's place in the batch, from 1 ($4).
_PUBLISHED = db.compile_once(db.published).sql
_CLOSED = db.compile_once(db.closed).sql
_STATEMENT = f"""
WITH ballots AS (
    SELECT * FROM unnest($1::int[], $2::varchar[], $3::bool[])
        WITH ORDINALITY AS b(question_id, voter, many, idx)
), asked AS (
    SELECT * FROM unnest($4::int[], $5::int[]) AS a(idx, choice_id)
), polls AS (
    SELECT id, ({_CLOSED}) AS closed, multiple
    FROM {db.question.name} WHERE id IN (SELECT question_id FROM ballots) AND {_PUBLISHED}
    ORDER BY id FOR KEY SHARE
), judged AS (
    SELECT b.idx, b.question_id, b.voter, p.id IS NOT NULL AS found, p.closed,
           p.multiple OR NOT b.many AS fits,
           NOT EXISTS (
               SELECT FROM asked a
               LEFT JOIN {db.choice.name} c ON c.id = a.choice_id AND c.question_id = b.question_id
               WHERE a.idx = b.idx AND c.id IS NULL
           ) AS choices_ok
    FROM ballots b LEFT JOIN polls p ON p.id = b.question_id
), firsts AS (
    SELECT DISTINCT ON (question_id, voter) idx, question_id, voter
    FROM judged WHERE found AND NOT closed AND fits AND choices_ok
    ORDER BY question_id, voter, idx
), new AS (
    INSERT INTO {db.ballot.name} (question_id, voter)
    SELECT question_id, voter FROM firsts ORDER BY question_id, voter
    ON CONFLICT DO NOTHING
    RETURNING question_id, voter
), picked AS (
    SELECT f.idx, f.question_id, f.voter, a.choice_id
    FROM firsts f JOIN new USING (question_id, voter) JOIN asked a ON a.idx = f.idx
), recorded AS (
    INSERT INTO {db.vote.name} (question_id, voter, choice_id)
    SELECT question_id, voter, choice_id FROM picked
    RETURNING choice_id
), tallies AS (
    SELECT choice_id, count(*) AS n FROM recorded GROUP BY choice_id
), locked AS (
    SELECT id FROM {db.choice.name} WHERE id IN (SELECT choice_id FROM tallies) ORDER BY id FOR NO KEY UPDATE
), counted AS (
    UPDATE {db.choice.name} c SET votes = c.votes + t.n
    FROM tallies t WHERE c.id = t.choice_id AND c.id IN (SELECT id FROM locked)
    RETURNING c.id
)
SELECT j.idx, j.found, j.closed, j.fits, j.choices_ok,
       j.idx IN (SELECT idx FROM picked) AS counted,
       -- For a ballot naming a choice not in its poll: did this voter vote here before?
       -- (the statement's snapshot: ballots from before this batch)
       NOT j.choices_ok AND EXISTS (
           SELECT FROM {db.ballot.name} x WHERE x.question_id = j.question_id AND x.voter = j.voter
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
_EXECUTE = f"EXECUTE {_NAME}(%(polls)s, %(voters)s, %(many)s, %(asked_by)s, %(asked)s)"
# Where EXECUTE found no such statement: one string, so one implicit transaction that a
# pooler keeps on one server connection. In transaction pooling that connection may have it
# already (the miss was on another): DEALLOCATE ALL first, so PREPARE cannot fail; this
# app's statement is the only one prepared on its connections.
_PREPARE_AND_EXECUTE = (
    f"DEALLOCATE ALL;\nPREPARE {_NAME}(int[], varchar[], bool[], int[], int[]) AS {_STATEMENT};\n{_EXECUTE}"
)


class VoteOutcome(enum.Enum):
    COUNTED = "counted"
    ALREADY_VOTED = "already voted"
    INVALID_CHOICE = "invalid choice"
    CLOSED = "closed"


class VoteNotCounted(Exception):
    """The ballot could not be written, even alone; nothing of it was kept."""


class _Ballot:
    __slots__ = ("choices", "future", "many", "question_id", "voter")

    def __init__(
        self, question_id: int, choices: list[int], many: bool, voter: str, future: asyncio.Future
    ) -> None:
        self.question_id = question_id
        self.choices = choices
        self.many = many  # more than one choice was sent: only a `multiple` poll takes that
        self.voter = voter
        self.future = future


class VoteBatcher:
    """The process's vote writer: `await cast(...)` returns once the ballot is committed."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = MAX_BATCH,
        writers: int = WRITERS,
        spill: int = SPILL,
        on_commit: Callable[[Iterable[int]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.writers = writers
        self.spill = spill
        self.on_commit = on_commit
        self._queue: list[_Ballot] = []
        self._running = 0
        self.transactions = 0  # batches committed, for tests and curiosity
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def cast(self, question_id: int, choice_ids: Sequence[int], voter: str) -> VoteOutcome:
        """Count one voter's ballot for these choices, all or nothing, together with the
        ballots arriving meanwhile. More than one choice for a poll that is not `multiple`
        is INVALID_CHOICE, so a vote needs no read of its poll before it is queued."""
        wanted = sorted(set(choice_ids))
        if not wanted or any(not 0 < c <= db.PG_INT_MAX for c in wanted):
            return VoteOutcome.INVALID_CHOICE
        if not 0 < question_id <= db.PG_INT_MAX:
            return VoteOutcome.INVALID_CHOICE
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Ballot(question_id, wanted, len(choice_ids) > 1, voter, future))
        if not self._running or (self._running < self.writers and len(self._queue) >= self.spill):
            self._running += 1
            self._idle.clear()
            task = asyncio.ensure_future(self._write_queue())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A request cancelled meanwhile cancels only this future, not the ballot: that is
        # written (or not) whole with its batch either way.
        return await future

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
                await self._write(batch)
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    async def _write(self, batch: list[_Ballot]) -> None:
        try:
            outcomes = await self._transaction(batch)
        except TimeoutError:
            # No connection and answer within `database.timeout` (aiopg has closed that
            # connection). Retrying ballot by ballot would wait as long again for each:
            # answer the whole batch now. Nothing half-written either way (one transaction),
            # and the ballot key keeps the voter's retry from counting twice.
            log.warning("vote batch of %d not counted: the database did not answer in time", len(batch))
            for ballot in batch:
                _settle(ballot.future, exception=VoteNotCounted("database timeout"))
            return
        except psycopg2.Error as exc:
            if len(batch) == 1:
                reason = logs.first_line(exc)
                log.warning("vote not counted: %s", reason)
                _settle(batch[0].future, exception=VoteNotCounted(reason))
                return
            log.warning("vote batch of %d failed (%s); retrying one by one", len(batch), type(exc).__name__)
            for ballot in batch:
                await self._write([ballot])
            return
        for ballot, outcome in zip(batch, outcomes, strict=True):
            _settle(ballot.future, outcome)

    async def _transaction(self, batch: list[_Ballot]) -> list[VoteOutcome]:
        asked_by: list[int] = []  # for each choice asked for, its ballot's place (from 1)
        asked: list[int] = []
        for i, b in enumerate(batch, 1):
            asked_by += [i] * len(b.choices)
            asked += b.choices
        # Waiting for a pooled connection counts too: across a lost network every new one
        # hangs for the whole timeout, one after another, and the proxy gives up first.
        async with asyncio.timeout(self.engine.timeout), self.engine.acquire() as conn:
            rows = await _execute(
                conn,
                polls=[b.question_id for b in batch],
                voters=[b.voter for b in batch],
                many=[b.many for b in batch],
                asked_by=asked_by,
                asked=asked,
            )
        self.transactions += 1
        outcomes = _outcomes(batch, rows)
        if rows[0].counters != rows[0].tallied:  # the foreign keys make this an error first
            log.error("vote batch counted %d of %d choices", rows[0].counters, rows[0].tallied)
        changed = sorted(
            {b.question_id for b, o in zip(batch, outcomes, strict=True) if o is VoteOutcome.COUNTED}
        )
        if changed and self.on_commit is not None:
            self.on_commit(changed)
        return outcomes


def _outcomes(batch: list[_Ballot], rows: list) -> list[VoteOutcome]:
    """Each ballot's outcome from the batch statement's row for it (rows in batch order)."""
    pairs = list(zip(batch, rows, strict=True))
    counted_at = {(b.question_id, b.voter): row.idx for b, row in pairs if row.counted}
    outcomes = []
    for b, row in pairs:
        if not row.found:
            outcome = VoteOutcome.INVALID_CHOICE
        elif row.closed:
            outcome = VoteOutcome.CLOSED
        elif not row.fits:
            outcome = VoteOutcome.INVALID_CHOICE
        elif row.counted:
            outcome = VoteOutcome.COUNTED
        elif row.choices_ok:
            outcome = VoteOutcome.ALREADY_VOTED  # an earlier ballot of this voter's, here or before
        else:
            # A choice not in its poll: "already voted" if the voter's ballot was in first
            # (the ballot is checked before the choices), else refused.
            earlier = counted_at.get((b.question_id, b.voter), row.idx)
            outcome = (
                VoteOutcome.ALREADY_VOTED
                if row.voted_before or earlier < row.idx
                else VoteOutcome.INVALID_CHOICE
            )
        outcomes.append(outcome)
    return outcomes


async def _execute(conn: Any, **params: Any) -> list:
    """The batch statement's rows: EXECUTE, preparing it first where the server has it not.

    A prepared statement lives on a server connection: a new one (the server restarted, or
    PgBouncer replaced its connections or, in transaction pooling, lent another one) has
    none, and EXECUTE fails before running anything, so nothing of the batch was kept.
    """
    try:
        return await _rows(conn, _EXECUTE, **params)
    except psycopg2.errors.InvalidSqlStatementName:
        return await _rows(conn, _PREPARE_AND_EXECUTE, **params)


async def _rows(conn: Any, sql: str, **params: Any) -> list:
    return await (await conn.execute(sql, params)).fetchall()


def _settle(
    future: asyncio.Future, outcome: VoteOutcome | None = None, exception: BaseException | None = None
) -> None:
    if future.done():  # its request was cancelled; the ballot was written (or not) regardless
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(outcome)
