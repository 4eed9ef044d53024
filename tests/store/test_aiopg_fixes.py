"""aiopg as this app relies on it (aiohttpdemo_polls/aiopg_fixes.py), and the pool's rule that a
broken connection is never lent again.

The descriptor tests run in a process holding more than 1,024 descriptors, as a process with a
thousand open WebSockets does: every new database connection is then numbered above 1023.
"""

import asyncio
import errno
import inspect
import logging
import os
import select
from collections.abc import Iterator

import aiopg
import aiopg.connection
import aiopg.sa
import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa
from descriptors import open_files_limit

from aiohttpdemo_polls.store import aiopg_fixes, connections

DESCRIPTORS = 1100  # held open by the test: past select()'s limit of 1024


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """This process holds more than 1,024 open descriptors while the test runs."""
    with open_files_limit(DESCRIPTORS + 512):
        held = [os.open(os.devnull, os.O_RDONLY) for _ in range(DESCRIPTORS)]
        try:
            yield
        finally:
            for fd in held:
                os.close(fd)


async def answers(cursor, sql: str) -> list:
    """The statement's rows; a hung answer fails the test rather than hanging it."""
    async with asyncio.timeout(5):
        await cursor.execute(sql)
        return await cursor.fetchall()


def test_aiopg_still_checks_the_socket_with_select_where_the_correction_answers():
    """If aiopg changes `Connection._ready`, aiopg_fixes.py must be looked at again."""
    source = inspect.getsource(aiopg.connection.Connection._ready)
    assert "select.select([self._fileno], [], [], 0)" in source
    assert source.count("select.") == 1
    assert aiopg.connection.select.select is aiopg_fixes._select_by_poll


def test_the_poll_based_select_answers_as_select_does_for_any_descriptor(many_descriptors):
    reader, writer = os.pipe()
    try:
        assert reader >= 1024
        assert aiopg_fixes._select_by_poll([reader], [], [], 0) == ([], [], [])
        os.write(writer, b"x")
        assert aiopg_fixes._select_by_poll([reader], [writer], [], 0) == ([reader], [writer], [])
    finally:
        os.close(reader)
        os.close(writer)
    with pytest.raises(OSError) as closed:
        aiopg_fixes._select_by_poll([reader], [], [], 0)
    assert closed.value.errno == errno.EBADF


async def test_a_connection_numbered_above_1024_answers_sql_errors_and_goes_on(
    many_descriptors, database_url
):
    conn = await aiopg.connect(database_url, timeout=5)
    try:
        assert conn.raw.fileno() >= 1024
        cursor = await conn.cursor()
        for _ in range(3):
            with pytest.raises(psycopg2.errors.DivisionByZero):
                await answers(cursor, "SELECT 1/0")
            assert await answers(cursor, "SELECT 2") == [(2,)]
    finally:
        await conn.close()


async def test_without_the_correction_such_a_connection_hangs_on_its_first_error(
    many_descriptors, database_url, monkeypatch, caplog
):
    """The defect the correction exists for is still in the installed aiopg: when aiopg
    releases a fix, this test fails, and aiopg_fixes.py can go."""
    monkeypatch.setattr(aiopg.connection, "select", select)
    conn = await aiopg.connect(database_url, timeout=5)
    try:
        assert conn.raw.fileno() >= 1024
        cursor = await conn.cursor()
        with caplog.at_level(logging.ERROR, logger="asyncio"), pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await cursor.execute("SELECT 1/0")
    finally:
        await conn.close()
    assert "filedescriptor out of range in select()" in caplog.text


async def test_is_idle_sees_a_query_in_flight(database_url):
    """aiopg_fixes.is_idle reads aiopg's waiter: a query in flight is not idle, nor a transaction."""
    conn = await aiopg.connect(database_url, timeout=5)
    try:
        assert aiopg_fixes.is_idle(conn)
        cursor = await conn.cursor()
        query = asyncio.ensure_future(cursor.execute("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        assert not aiopg_fixes.is_idle(conn)
        await query
        assert aiopg_fixes.is_idle(conn)
        await cursor.execute("BEGIN")
        assert not aiopg_fixes.is_idle(conn)
        await cursor.execute("ROLLBACK")
        assert aiopg_fixes.is_idle(conn)
    finally:
        await conn.close()
    assert not aiopg_fixes.is_idle(conn)


@pytest.fixture
async def one_connection_engine(database_url):
    """A pool of one connection: whether the next borrower gets the same server process
    shows whether the last connection was given back or closed."""
    async with aiopg.sa.create_engine(database_url, minsize=1, maxsize=1, timeout=5) as engine:
        yield engine


async def backend(engine) -> int:
    async with connections.connection(engine) as conn:
        return await conn.scalar(sa.text("SELECT pg_backend_pid()"))


async def test_a_connection_that_raised_an_ordinary_sql_error_is_lent_again(one_connection_engine):
    first = await backend(one_connection_engine)
    with pytest.raises(psycopg2.errors.DivisionByZero):
        async with connections.connection(one_connection_engine) as conn:
            await conn.execute(sa.text("SELECT 1/0"))
    with pytest.raises(LookupError):  # the caller's own error, raised while the connection is idle
        async with connections.connection(one_connection_engine):
            raise LookupError
    assert await backend(one_connection_engine) == first


async def test_a_connection_whose_server_ended_it_is_closed_not_lent_again(
    one_connection_engine, sync_engine
):
    first = await backend(one_connection_engine)
    with sync_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    with pytest.raises(psycopg2.OperationalError):
        async with connections.connection(one_connection_engine) as conn:
            await conn.execute(sa.text("SELECT 1"))
    assert await backend(one_connection_engine) != first


@pytest.mark.parametrize("sqlstate", ["XX000", "58030", "08006"])
async def test_a_connection_that_raised_a_server_or_connection_error_is_closed_not_lent_again(
    one_connection_engine, sqlstate
):
    """Internal, system and connection errors leave a connection open that nothing vouches for."""
    first = await backend(one_connection_engine)
    with pytest.raises(psycopg2.Error) as raised:
        async with connections.connection(one_connection_engine) as conn:
            await conn.execute(
                sa.text(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$")
            )
    assert raised.value.pgcode == sqlstate
    assert await backend(one_connection_engine) != first


async def test_a_connection_left_mid_query_or_mid_transaction_is_closed_not_lent_again(one_connection_engine):
    first = await backend(one_connection_engine)
    with pytest.raises(LookupError):
        async with connections.connection(one_connection_engine) as conn:
            await conn.execute(sa.text("BEGIN"))
            raise LookupError  # a transaction nobody ended: its state is not the next borrower's
    second = await backend(one_connection_engine)
    assert second != first

    async def query_left_waiting() -> None:
        async with connections.connection(one_connection_engine) as conn:
            await conn.execute(sa.text("SELECT pg_sleep(10)"))

    task = asyncio.ensure_future(query_left_waiting())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await backend(one_connection_engine) not in (first, second)


async def test_the_app_holding_many_descriptors_recovers_when_postgresql_ends_its_connections(
    many_descriptors, client, new_browser, make_question, vote, sync_engine, eventually, votes_of, caplog
):
    # Without the correction a request can wait without bound: fail, never hang.
    async with asyncio.timeout(60):
        question = make_question(choices=("Yes", "No"))
        yes, no = question["choices"]
        async with client.ws_connect(f"/poll/{question['id']}/live") as ws:
            assert (await ws.receive_json(timeout=5))["total"] == 0
            assert (await vote(new_browser(client), question["id"], yes)).status == 302
            assert (await ws.receive_json(timeout=5))["total"] == 1
            with sync_engine.connect() as conn:
                ended = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND backend_type = 'client backend'"
                    )
                ).scalar()
            assert ended >= 2  # the pool's and the listener's

            async def votes_again() -> bool:
                response = await vote(new_browser(client), question["id"], no)
                assert response.status in (302, 503), response.status
                return response.status == 302

            await eventually(votes_again, timeout=10)
            while (update := await ws.receive_json(timeout=5))["total"] < sum(
                votes_of(question["id"]).values()
            ):
                pass
            assert update["total"] == sum(votes_of(question["id"]).values())
        assert "filedescriptor out of range" not in caplog.text
        assert "Task exception was never retrieved" not in caplog.text


async def test_drop_idle_closes_the_pools_idle_connections(database_url):
    """aiopg_fixes.drop_idle reaches aiopg.sa's pool: after it, the next borrower gets a new one."""
    async with aiopg.sa.create_engine(database_url, minsize=2, maxsize=2, timeout=5) as engine:
        before = {await backend(engine), await backend(engine)}
        assert engine.freesize == 2
        await aiopg_fixes.drop_idle(engine)
        assert engine.freesize == 0
        assert await backend(engine) not in before


async def test_a_lost_connection_drops_the_pools_idle_ones_too(database_url, end_blocked_backend):
    """After a restart or failover every pooled connection is dead: the next borrower must
    not be handed the next dead one in line, so the idle ones go with the lost one."""
    async with aiopg.sa.create_engine(database_url, minsize=3, maxsize=3, timeout=5) as engine:
        assert engine.freesize == 3

        async def read() -> None:
            async with connections.connection(engine) as conn:
                await conn.execute(sa.text("SELECT count(*) FROM question"))

        reading = await end_blocked_backend("LOCK TABLE question IN ACCESS EXCLUSIVE MODE", read)
        with pytest.raises(psycopg2.OperationalError):
            await reading
        assert engine.freesize == 0  # the two live idle ones were closed as well
