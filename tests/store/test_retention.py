"""Retention (store/retention.py): polls closed longer than `retention.closed_days` go with
everything of theirs; rate-limit counters go once their hour is over; one process of the
deployment sweeps at a time, and the job outlives any failure."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import aiopg.sa
import pytest
import sqlalchemy as sa

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.store import retention, schema
from aiohttpdemo_polls.store.changes import Changes


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def table_counts(sync_engine) -> dict[str, int]:
    with sync_engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("question", "choice", "ballot", "vote")
        }


def poll_ids(sync_engine) -> set[int]:
    with sync_engine.connect() as conn:
        return set(conn.execute(sa.select(schema.question.c.id)).scalars())


@pytest.fixture
async def engine(database_url):
    async with aiopg.sa.create_engine(database_url, minsize=0, maxsize=4, timeout=5) as engine:
        yield engine


@pytest.fixture
async def bus(database_url):
    changes = Changes(database_url)
    await changes.start()
    yield changes
    await changes.stop()


def test_retention_setting_defaults_to_180_days_and_takes_the_environment(tmp_path):
    path = tmp_path / "polls.yaml"
    path.write_text("retention: {closed_days: 30}\n")
    assert settings.SCHEMA.check({})["retention"] == {"closed_days": 180}
    assert settings.load(path, {})["retention"]["closed_days"] == 30
    assert settings.load(path, {"POLLS_RETENTION_CLOSED_DAYS": "0"})["retention"]["closed_days"] == 0


@pytest.mark.parametrize("value", ["-1", "soon", "36501"])
def test_a_bad_retention_setting_is_a_config_error_naming_the_key(tmp_path, value):
    path = tmp_path / "polls.yaml"
    path.write_text("host: 127.0.0.1\n")
    with pytest.raises(settings.ConfigError, match=r"retention\.closed_days"):
        settings.load(path, {"POLLS_RETENTION_CLOSED_DAYS": value})


async def test_polls_closed_longer_than_the_setting_are_deleted_with_their_ballots_and_votes(
    engine, bus, make_question, add_votes, sync_engine
):
    old = make_question("Closed long ago", days=-400, closed_at=ago(200))
    expired_by_date = make_question("Closed by its date", days=-400, closes_at=ago(181))
    recent = make_question("Closed lately", days=-400, closed_at=ago(179))
    still_open = make_question("Open for ever", days=-400)
    closes_later = make_question("Closes next week", days=-400, closes_at=ago(-7))
    for poll in (old, expired_by_date, recent, still_open):
        add_votes(poll["id"], {poll["choices"][0]: 2, poll["choices"][1]: 1})
    heard: list[int | None] = []
    with bus.subscribe(heard.append):
        async with engine.acquire() as conn:
            expired = await retention.expired_polls(conn, 180)
            assert [(p.id, p.question_text) for p in expired] == [
                (old["id"], "Closed long ago"),
                (expired_by_date["id"], "Closed by its date"),
            ]
            deleted = await retention.purge_polls(conn, bus, 180)
    assert deleted == sorted([old["id"], expired_by_date["id"]])
    # The bus hears of them at once: caches and live pages drop them without waiting for NOTIFY.
    assert set(deleted) <= set(heard)
    assert poll_ids(sync_engine) == {recent["id"], still_open["id"], closes_later["id"]}
    assert table_counts(sync_engine) == {"question": 3, "choice": 9, "ballot": 6, "vote": 6}


async def test_closed_since_is_the_earlier_of_the_close_and_the_closing_date(engine, make_question):
    closed_twice = make_question(days=-400, closes_at=ago(200), closed_at=ago(10))
    async with engine.acquire() as conn:
        expired = await retention.expired_polls(conn, 180)
    assert [p.id for p in expired] == [closed_twice["id"]]
    assert abs(expired[0].closed_since - ago(200)) < timedelta(minutes=1)


async def test_a_backlog_is_deleted_a_batch_per_transaction(engine, bus, make_question, sync_engine):
    old = [make_question(f"Old {n}", days=-400, closed_at=ago(200))["id"] for n in range(7)]
    async with engine.acquire() as conn:
        assert await retention.purge_polls(conn, bus, 180, limit=3) == old[:3]
    sweeper = retention.Sweeper(engine, bus, 180, batch=3)
    assert await sweeper.sweep_polls() == old[3:]
    assert poll_ids(sync_engine) == set()


async def test_a_poll_locked_by_its_maker_waits_for_the_next_sweep(engine, bus, make_question, sync_engine):
    busy, idle = (make_question(days=-400, closed_at=ago(200))["id"] for _ in range(2))
    with sync_engine.connect() as maker:  # reopening it, say: its row is locked
        maker.execute(sa.text("SELECT 1 FROM question WHERE id = :id FOR UPDATE"), {"id": busy})
        async with engine.acquire() as conn:
            assert await retention.purge_polls(conn, bus, 180) == [idle]
        maker.rollback()
    async with engine.acquire() as conn:
        assert await retention.purge_polls(conn, bus, 180) == [busy]


async def test_zero_days_keeps_every_poll(engine, bus, make_question, sync_engine):
    make_question(days=-4000, closed_at=ago(3000))
    async with engine.acquire() as conn:
        assert await retention.expired_polls(conn, 0) == []
        assert await retention.purge_polls(conn, bus, 0) == []
    assert len(poll_ids(sync_engine)) == 1


async def test_rate_limit_counters_are_deleted_once_their_hour_is_over(engine, sync_engine):
    with sync_engine.begin() as conn:
        conn.execute(
            schema.poll_creation.insert(),
            [
                {"client": "192.0.2.1", "created_at": datetime.now(UTC) - timedelta(minutes=61)},
                {"client": "192.0.2.1", "created_at": datetime.now(UTC) - timedelta(hours=30)},
                {"client": "192.0.2.2", "created_at": datetime.now(UTC) - timedelta(minutes=59)},
            ],
        )
    async with engine.acquire() as conn:
        assert await retention.purge_counters(conn) == 2
    with sync_engine.connect() as conn:
        left = conn.execute(sa.select(schema.poll_creation.c.client)).scalars().all()
    assert left == ["192.0.2.2"]


def test_every_rate_limit_table_is_in_the_one_list_with_its_time_column():
    # A table that counts per client for a limit is one whose rows retention must end.
    counting = {t for t in schema.metadata.tables.values() if {"client", "created_at"} <= set(t.c.keys())}
    assert counting == {schema.poll_creation, schema.report_filing, schema.sign_in_failure}
    assert {table for table, _ in retention.COUNTERS} == counting
    for table, column in retention.COUNTERS:
        assert column.table is table and isinstance(column.type, sa.DateTime)


async def test_two_processes_sweeping_at_once_delete_each_poll_once_and_both_go_on(
    database_url, make_question, sync_engine
):
    for n in range(20):
        make_question(f"Old {n}", days=-400, closed_at=ago(200))
    # Two apps' worth of engines and buses: a process each, as on two hosts.
    async with (
        aiopg.sa.create_engine(database_url, minsize=0, maxsize=2) as first,
        aiopg.sa.create_engine(database_url, minsize=0, maxsize=2) as second,
    ):
        buses = [Changes(database_url), Changes(database_url)]
        for changes in buses:
            await changes.start()
        try:
            async with first.acquire() as a, second.acquire() as b:
                # `a` holds the lock while `b` tries: `b` skips instead of waiting or deleting.
                async with a.begin():
                    assert await a.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(*retention.POLLS_LOCK)))
                    assert await retention.purge_polls(b, buses[1], 180) is None
                    assert await retention.purge_counters(b) is not None  # another lock: not held
                results = await asyncio.gather(
                    *(retention.purge_polls(c, bus, 180) for c, bus in ((a, buses[0]), (b, buses[1])))
                )
                deleted = [ids for ids in results if ids]
                assert len(deleted) == 1 and len(deleted[0]) == 20
                assert all(ids in (None, []) for ids in results if ids is not deleted[0])
                # Both sweep on afterwards, finding nothing left.
                assert await retention.purge_polls(a, buses[0], 180) == []
                assert await retention.purge_polls(b, buses[1], 180) == []
        finally:
            for changes in buses:
                await changes.stop()
    assert poll_ids(sync_engine) == set()


async def test_sweeper_sweeps_at_its_intervals_until_stopped(
    engine, bus, make_question, sync_engine, eventually
):
    sweeper = retention.Sweeper(engine, bus, 180, polls_every=0.2, counters_every=0.05, first_delay=(0, 0))
    sweeper.start()
    try:
        make_question(days=-400, closed_at=ago(200))

        async def gone() -> bool:
            return poll_ids(sync_engine) == set()

        await eventually(gone)
    finally:
        await sweeper.stop()
    assert sweeper._task is None


@pytest.mark.slow
async def test_sweeper_survives_a_failing_sweep_and_a_database_gone_and_back(
    stoppable_database, make_question, eventually, caplog
):
    url = stoppable_database.url
    app_engine = sa.create_engine(url, future=True)

    def add_old_poll() -> None:
        with app_engine.begin() as conn:
            conn.execute(
                schema.question.insert().values(question_text="Old", pub_date=ago(400), closed_at=ago(200))
            )

    def polls_left() -> int:
        with app_engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(schema.question)).scalar_one()

    failures = 0

    class Faulty(retention.Sweeper):
        async def sweep_counters(self):
            nonlocal failures
            failures += 1
            if failures == 1:
                raise RuntimeError("a fault of ours")
            if failures == 2:  # a statement the database refuses
                async with self.engine.acquire() as conn:
                    await conn.execute(sa.text("SELECT * FROM no_such_table"))
            return await super().sweep_counters()

    caplog.set_level(logging.WARNING, logger="aiohttpdemo_polls.store.retention")
    try:
        async with aiopg.sa.create_engine(url, minsize=0, maxsize=2, timeout=2) as engine:
            changes = Changes(url, timeout=2)
            await changes.start()
            sweeper = Faulty(engine, changes, 180, polls_every=0.1, counters_every=0.05, first_delay=(0, 0))
            sweeper.start()
            try:
                add_old_poll()

                async def swept() -> bool:
                    return polls_left() == 0

                await eventually(swept)

                async def faults_passed() -> bool:
                    return failures > 2

                await eventually(faults_passed)
                stoppable_database.stop()

                async def away() -> bool:
                    return changes.away

                await eventually(away)
                stoppable_database.start()
                app_engine.dispose()
                add_old_poll()
                await eventually(swept, timeout=30)
                assert not sweeper._task.done()
            finally:
                await sweeper.stop()
                await changes.stop()
    finally:
        app_engine.dispose()
    assert failures > 2
    assert "RuntimeError: a fault of ours" in caplog.text
    assert 'relation "no_such_table" does not exist' in caplog.text
