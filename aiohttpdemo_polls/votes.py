"""Votes arriving together, written in one transaction (group commit).

PostgreSQL can update one row only so many times a second (each update of the hot
choice's counter waits for the previous transaction to commit), and every commit waits
for the disk. So each process writes ballots in batches: while one batch commits, the
ballots arriving meanwhile queue up, and the next transaction takes them all (up to
`max_batch`). Under light load a ballot goes alone at once; under heavy load batches grow
by themselves and throughput follows. Each batch is one transaction:

1. which of its polls are published, and which closed, locked `FOR KEY SHARE` as
   `db.cast_vote` does (a maker's close, edit or delete in flight is waited for, and
   nothing counts after it); and which poll each named choice belongs to;
2. `INSERT INTO ballot ... ON CONFLICT DO NOTHING RETURNING`: one ballot per voter per
   poll, also against batches committing elsewhere at the same moment;
3. one statement that locks the choices in id order, adds each one's count
   (`votes = votes + n`), inserts the `vote` rows and sends one `pg_notify` per poll
   (delivered only when it commits). The counters are locked only from here to the
   commit, so the next batch can do steps 1-2 while this one commits; locking polls,
   then ballots, then choices, each in order, keeps concurrent batches (several
   processes too) from deadlocking. A choice deleted since step 1 makes the counts come
   out short: the batch is rolled back and retried one by one.

Every request is answered only after its batch has committed. The outcomes are exactly
`db.cast_vote`'s: a voter appearing twice in one batch is counted once and the second is
"already voted", as it would be in two transactions; invalid choices and closed polls are
refused without touching the others. If a batch fails (deadlock, lost connection...) it
is rolled back whole and its ballots are retried one by one, each in its own
transaction; a ballot that fails alone gets the error (its request shows an error page)
and nothing of it is kept: never lost silently, never doubled (the ballot key).
"""

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg2
from aiopg.sa import Engine

from . import db

log = logging.getLogger(__name__)

MAX_BATCH = 512
WRITERS = 2  # transactions in flight per process: one commits while the next is built

# Plain SQL with array parameters: the statements are the same for any batch size, so
# nothing is compiled per request (SQLAlchemy compiling a 500-row VALUES list costs more
# than running it). The rules for "published" and "closed" are db's, compiled once.
_PUBLISHED = db.compile_once(db.published).sql
_CLOSED = db.compile_once(db.closed).sql
_CHECK = f"""
WITH polls AS (
    SELECT id, ({_CLOSED}) AS closed, multiple
    FROM {db.question.name} WHERE id = ANY(%(polls)s) AND {_PUBLISHED}
    ORDER BY id FOR KEY SHARE
)
SELECT id AS question_id, NULL::int AS choice_id, closed, multiple FROM polls
UNION ALL
SELECT question_id, id, NULL, NULL FROM {db.choice.name} WHERE id = ANY(%(choices)s)
"""
_NEW_BALLOTS = f"""
INSERT INTO {db.ballot.name} (question_id, voter)
SELECT * FROM unnest(%(polls)s::int[], %(voters)s::varchar[])
ON CONFLICT DO NOTHING
RETURNING question_id, voter
"""
_EXISTING_BALLOTS = f"""
SELECT question_id, voter FROM {db.ballot.name}
WHERE (question_id, voter) IN (SELECT * FROM unnest(%(polls)s::int[], %(voters)s::varchar[]))
"""
_COUNT = f"""
WITH locked AS (
    SELECT id FROM {db.choice.name} WHERE id = ANY(%(choices)s) ORDER BY id FOR NO KEY UPDATE
), counted AS (
    UPDATE {db.choice.name} c SET votes = c.votes + d.n
    FROM unnest(%(choices)s::int[], %(counts)s::int[]) AS d(id, n)
    WHERE c.id = d.id AND c.id IN (SELECT id FROM locked)
    RETURNING c.id
), recorded AS (
    INSERT INTO {db.vote.name} (question_id, voter, choice_id)
    SELECT * FROM unnest(%(vote_polls)s::int[], %(vote_voters)s::varchar[], %(vote_choices)s::int[])
    RETURNING 1
), notified AS (
    SELECT pg_notify('{db.CHANNEL}', p::text) FROM unnest(%(changed)s::int[]) AS p
)
SELECT (SELECT count(*) FROM counted) AS counted,
       (SELECT count(*) FROM recorded) AS recorded,
       (SELECT count(*) FROM notified) AS notified
"""


class BatchFailed(Exception):
    """A batch wrote something other than what it checked it would: roll it back."""


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
        on_commit: Callable[[Iterable[int]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.writers = writers
        self.on_commit = on_commit
        self._queue: list[_Ballot] = []
        self._running = 0
        self.transactions = 0  # batches committed, for tests and curiosity
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def cast(self, question_id: int, choice_ids: Sequence[int], voter: str) -> db.VoteOutcome:
        """Like `db.cast_vote`, but written together with the ballots arriving meanwhile.

        Also refuses (INVALID_CHOICE) more than one choice for a poll that is not
        `multiple`, so a vote needs no read of its poll before it is queued.
        """
        wanted = sorted(set(choice_ids))
        if not wanted or any(not 0 < c <= db.PG_INT_MAX for c in wanted):
            return db.VoteOutcome.INVALID_CHOICE
        if not 0 < question_id <= db.PG_INT_MAX:
            return db.VoteOutcome.INVALID_CHOICE
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Ballot(question_id, wanted, len(choice_ids) > 1, voter, future))
        if self._running < self.writers:
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
            while self._queue:
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
            # The database did not answer within `database.timeout` (aiopg has closed that
            # connection). Retrying ballot by ballot would wait as long again for each:
            # answer the whole batch now. Nothing half-written either way (one transaction),
            # and the ballot key keeps the voter's retry from counting twice.
            log.warning("vote batch of %d not counted: the database did not answer in time", len(batch))
            for ballot in batch:
                _settle(ballot.future, exception=VoteNotCounted("database timeout"))
            return
        except (psycopg2.Error, BatchFailed) as exc:
            if len(batch) == 1:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("vote not counted: %s", reason)
                _settle(batch[0].future, exception=VoteNotCounted(reason))
                return
            log.warning("vote batch of %d failed (%s); retrying one by one", len(batch), type(exc).__name__)
            for ballot in batch:
                await self._write([ballot])
            return
        for ballot, outcome in zip(batch, outcomes, strict=True):
            _settle(ballot.future, outcome)

    async def _transaction(self, batch: list[_Ballot]) -> list[db.VoteOutcome]:
        outcomes: list[db.VoteOutcome | None] = [None] * len(batch)
        async with self.engine.acquire() as conn, conn.begin():
            polls = sorted({b.question_id for b in batch})
            asked = sorted({c for b in batch for c in b.choices})
            states: dict[int, bool] = {}
            multiple: dict[int, bool] = {}
            owner: dict[int, int] = {}
            for row in await _rows(conn, _CHECK, polls=polls, choices=asked):
                if row[1] is None:
                    states[row[0]], multiple[row[0]] = row[2], row[3]
                else:
                    owner[row[1]] = row[0]

            candidates: dict[tuple[int, str], int] = {}  # first valid ballot per (poll, voter)
            invalid: list[int] = []
            for i, b in enumerate(batch):
                state = states.get(b.question_id)
                if state is None:
                    outcomes[i] = db.VoteOutcome.INVALID_CHOICE
                elif state:
                    outcomes[i] = db.VoteOutcome.CLOSED
                elif b.many and not multiple[b.question_id]:
                    outcomes[i] = db.VoteOutcome.INVALID_CHOICE
                elif any(owner.get(c) != b.question_id for c in b.choices):
                    invalid.append(i)
                elif (b.question_id, b.voter) in candidates:
                    outcomes[i] = db.VoteOutcome.ALREADY_VOTED
                else:
                    candidates[(b.question_id, b.voter)] = i

            keys = sorted(candidates)
            new = set()
            if keys:
                inserted = await _rows(
                    conn, _NEW_BALLOTS, polls=[q for q, _ in keys], voters=[v for _, v in keys]
                )
                new = {(row[0], row[1]) for row in inserted}
            counts: dict[int, int] = {}
            rows: list[tuple[int, str, int]] = []
            for key, i in candidates.items():
                if key in new:
                    outcomes[i] = db.VoteOutcome.COUNTED
                    for c in batch[i].choices:
                        counts[c] = counts.get(c, 0) + 1
                        rows.append((key[0], key[1], c))
                else:
                    outcomes[i] = db.VoteOutcome.ALREADY_VOTED

            # A ballot naming a choice not in its poll: "already voted" if that voter's
            # ballot exists (as db.cast_vote checks the ballot first), else refused.
            if invalid:
                asked = [(batch[i].question_id, batch[i].voter) for i in invalid]
                existing = await _rows(
                    conn, _EXISTING_BALLOTS, polls=[q for q, _ in asked], voters=[v for _, v in asked]
                )
                # `existing` sees this batch's own new ballots too: only an earlier one counts.
                existing_keys = {(row[0], row[1]) for row in existing}
                for i, key in zip(invalid, asked, strict=True):
                    voted_before = (key in existing_keys and key not in new) or (
                        key in new and candidates[key] < i
                    )
                    outcomes[i] = (
                        db.VoteOutcome.ALREADY_VOTED if voted_before else db.VoteOutcome.INVALID_CHOICE
                    )

            if rows:
                changed = sorted({q for q, _, _ in rows})
                ids = sorted(counts)
                result = (
                    await _rows(
                        conn,
                        _COUNT,
                        choices=ids,
                        counts=[counts[c] for c in ids],
                        vote_polls=[r[0] for r in rows],
                        vote_voters=[r[1] for r in rows],
                        vote_choices=[r[2] for r in rows],
                        changed=changed,
                    )
                )[0]
                if (result[0], result[1]) != (len(ids), len(rows)):
                    raise BatchFailed(f"counted {result[0]}/{len(ids)} choices, {result[1]}/{len(rows)} rows")
        self.transactions += 1
        if rows and self.on_commit is not None:
            self.on_commit(changed)
        return outcomes


async def _rows(conn: Any, sql: str, **params: Any) -> list:
    return await (await conn.execute(sql, params)).fetchall()


def _settle(
    future: asyncio.Future, outcome: db.VoteOutcome | None = None, exception: BaseException | None = None
) -> None:
    if future.done():  # its request was cancelled; the ballot was written (or not) regardless
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(outcome)
