"""What the site keeps, and for how long: polls closed longer than `retention.closed_days` are
deleted with everything of theirs (cascade), and rate-limit counters once their hour is over.
`Sweeper` does both in the background of every process; a PostgreSQL advisory lock makes one
process of the whole deployment do each sweep, however many processes and hosts run it.
"""

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg2
import sqlalchemy as sa
from aiopg.sa import Engine

from .. import logs
from . import aiopg_fixes, connections, schema
from .changes import Changes

log = logging.getLogger(__name__)

# Rate limits count rows per client address in the last hour. A row older than that counts
# for nothing, so it is deleted: (table, the column saying when its row was counted). A
# feature with a counter of its own adds its table here, and its tests' TRUNCATE list.
COUNTER_WINDOW = timedelta(hours=1)
COUNTERS: list[tuple[sa.Table, sa.Column]] = [
    (schema.poll_creation, schema.poll_creation.c.created_at),
    (schema.report_filing, schema.report_filing.c.created_at),
    (schema.sign_in_failure, schema.sign_in_failure.c.created_at),
]

# Advisory locks in the two-key space (apart from the one-key locks of making.py), taken
# in the deleting transaction: whoever holds one sweeps, the others skip this round.
_LOCK_CLASS = 0x706F6C6C  # "poll"
POLLS_LOCK = (_LOCK_CLASS, 1)
COUNTERS_LOCK = (_LOCK_CLASS, 2)

# Polls deleted per transaction: a backlog (retention just turned on, a long outage) goes in
# bounded steps, each within STEP_TIMEOUT, rather than one transaction that never ends.
PURGE_BATCH = 500
STEP_TIMEOUT = 60.0  # seconds one transaction of a sweep may take before it is given up
POLLS_EVERY = 3600.0  # seconds between two sweeps of old polls in one process
COUNTERS_EVERY = 60.0  # seconds between two sweeps of rate-limit counters: cheap, they hold an hour
# The first sweep of a process comes a while after it starts, at a random moment, so that a
# fleet started together does not sweep together, and a process restarted often still sweeps.
FIRST_DELAY = (60.0, 300.0)


class Expired(NamedTuple):
    """A poll retention will delete: `closed_since` is when its voting closed."""

    id: int
    question_text: str
    closed_since: datetime


def _older_than(closed_days: int) -> Any:
    """Closed for longer than `closed_days` (never true for an open poll: NULL)."""
    return schema.closed_since < sa.func.now() - sa.func.make_interval(0, 0, 0, closed_days)


async def expired_polls(conn: Any, closed_days: int) -> list[Expired]:
    """The polls a sweep would delete now, oldest closed first; none when `closed_days` is 0."""
    if closed_days <= 0:
        return []
    query = (
        sa.select(schema.question.c.id, schema.question.c.question_text, schema.closed_since.label("since"))
        .where(_older_than(closed_days))
        .order_by(sa.text("since"), schema.question.c.id)
    )
    rows = await (await conn.execute(query)).fetchall()
    return [Expired(row.id, row.question_text, row.since) for row in rows]


async def _locked(conn: Any, key: tuple[int, int], wait: bool) -> bool:
    """Take the sweep's lock until the transaction ends; False when another holds it (no wait)."""
    if wait:
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(*key)))
        return True
    return bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(*key))))


async def purge_polls(
    conn: Any, changes: Changes, closed_days: int, wait: bool = False, limit: int | None = None
) -> list[int] | None:
    """Delete the polls closed longer than `closed_days` (at most `limit`, oldest ids first),
    with their choices, ballots, votes and whatever else cascades from them; their ids, or None
    when another process was sweeping (`wait`: wait for it, then sweep what is left). A poll
    locked meanwhile (its maker reopening it) is left for the next sweep. The bus of changes
    hears of them once committed (other processes, from the schema's triggers)."""
    if closed_days <= 0:
        return []
    doomed = (
        sa.select(schema.question.c.id)
        .where(_older_than(closed_days))
        .order_by(schema.question.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    delete = (
        schema.question.delete()
        .where(schema.question.c.id.in_(doomed.scalar_subquery()))
        .returning(schema.question.c.id)
    )
    async with changes.transaction(conn) as changed:
        if not await _locked(conn, POLLS_LOCK, wait):
            return None
        ids = sorted(row.id for row in await (await conn.execute(delete)).fetchall())
        changed.update(ids)
    return ids


async def purge_counters(conn: Any, tables: Sequence[tuple[sa.Table, sa.Column]] = COUNTERS) -> int | None:
    """Delete every rate-limit counter row whose hour is over; how many, or None when another
    process was doing it."""
    async with conn.begin():
        if not await _locked(conn, COUNTERS_LOCK, wait=False):
            return None
        count = 0
        for table, counted_at in tables:
            result = await conn.execute(table.delete().where(counted_at <= sa.func.now() - COUNTER_WINDOW))
            count += result.rowcount
    return count


class Sweeper:
    """The process's retention job: rate-limit counters every `counters_every` seconds, old
    polls every `polls_every`. Nothing stops it but `stop()`: a failed sweep is logged and
    the next one comes on time (a database away, a statement refused, a fault of ours)."""

    def __init__(
        self,
        engine: Engine,
        changes: Changes,
        closed_days: int,
        *,
        polls_every: float = POLLS_EVERY,
        counters_every: float = COUNTERS_EVERY,
        first_delay: tuple[float, float] = FIRST_DELAY,
        batch: int = PURGE_BATCH,
    ) -> None:
        self.engine = engine
        self.changes = changes
        self.closed_days = closed_days
        self.polls_every = polls_every
        self.counters_every = counters_every
        self.first_delay = first_delay
        self.batch = batch
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is None:
            return
        await aiopg_fixes.cancel([self._task])
        self._task = None

    async def run(self) -> None:
        """Sweep until cancelled."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(random.uniform(*self.first_delay))
        polls_due = loop.time()
        while True:
            if loop.time() >= polls_due:
                polls_due = loop.time() + self.polls_every
                await self._guarded("old polls", self.sweep_polls)
            await self._guarded("rate-limit counters", self.sweep_counters)
            await asyncio.sleep(max(0.0, min(self.counters_every, polls_due - loop.time())))

    async def _guarded(self, what: str, sweep: Any) -> None:
        if self.changes.away:  # the database is known to be out of reach: next time
            return
        try:
            await sweep()
        except (psycopg2.Error, TimeoutError, OSError) as exc:
            log.warning("retention: sweeping %s failed (%s); trying again later", what, logs.first_line(exc))
        except Exception:
            # A fault of ours must not end the job: the next sweep comes all the same.
            log.exception("retention: sweeping %s failed", what)

    async def sweep_polls(self) -> list[int] | None:
        """Delete the polls past their time, a batch per transaction; their ids, or None when
        another process was sweeping."""
        if self.closed_days <= 0:
            return []
        swept: list[int] = []
        while True:
            async with asyncio.timeout(STEP_TIMEOUT), connections.connection(self.engine) as conn:
                ids = await purge_polls(conn, self.changes, self.closed_days, limit=self.batch)
            if ids is None:
                return swept or None
            if ids:
                log.info(
                    "retention: deleted %d polls closed over %d days: %s", len(ids), self.closed_days, ids
                )
            swept += ids
            if len(ids) < self.batch:
                return swept

    async def sweep_counters(self) -> int | None:
        async with asyncio.timeout(STEP_TIMEOUT), connections.connection(self.engine) as conn:
            return await purge_counters(conn)
