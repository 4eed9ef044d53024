"""Borrowing connections from the pool, and what a failed statement says about its connection.
Statements run many times are compiled once here, not on every call.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import psycopg2
import sqlalchemy as sa
from aiopg.sa import Engine, SAConnection
from aiopg.sa.engine import get_dialect

from . import aiopg_fixes
from .schema import CHANNEL


class Compiled(NamedTuple):
    """An expression's SQL text and the values of its own literals (100.0, 1, 0...)."""

    sql: str
    defaults: dict[str, Any]


def compile_once(clause: Any) -> Compiled:
    """Compile an expression with aiopg.sa's own dialect, for statements run many times:
    aiopg.sa would otherwise compile it again on every call."""
    compiled = clause.compile(dialect=get_dialect())
    return Compiled(str(compiled), dict(compiled.params))


async def execute_compiled(conn: Any, query: Compiled, **params: Any) -> Any:
    return await conn.execute(query.sql, {**query.defaults, **params})


# SQLSTATE classes after which a connection is not trusted again: connection exceptions,
# operator intervention (a terminated backend), insufficient resources, system and internal errors.
_BROKEN = frozenset({"08", "53", "57", "58", "XX"})


def ordinary_sql_error(exc: BaseException) -> bool:
    """An error the server answered and its connection survives: bad data, a constraint."""
    code = getattr(exc, "pgcode", None)
    return isinstance(exc, psycopg2.Error) and code is not None and code[:2] not in _BROKEN


def connection_lost(exc: BaseException) -> bool:
    """The connection failed under a statement (ended, dropped, closed), not the statement:
    on another connection it may well succeed."""
    lost = isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
    return lost and not ordinary_sql_error(exc)


@contextlib.asynccontextmanager
async def connection(engine: Engine) -> AsyncIterator[SAConnection]:
    """A connection from the pool, given back only if it is idle and raised nothing but an
    ordinary SQL error; any other is closed, so a broken connection is never lent again."""
    async with engine.acquire() as conn:
        try:
            yield conn
        except BaseException as exc:
            if isinstance(exc, psycopg2.Error) and not ordinary_sql_error(exc):
                conn.connection.close()
                if connection_lost(exc):
                    await aiopg_fixes.drop_idle(engine)
            raise
        finally:
            if not conn.closed and not aiopg_fixes.is_idle(conn):
                conn.connection.close()


async def listen(raw_conn: Any) -> None:
    """LISTEN on `CHANNEL` on a plain aiopg connection (live results hold one per process)."""
    async with raw_conn.cursor() as cursor:
        await cursor.execute(f"LISTEN {CHANNEL}")


async def ping_raw(raw_conn: Any) -> None:
    """`ping` for a plain aiopg connection (the live-results listener's): raises if it is dead."""
    async with raw_conn.cursor() as cursor:
        await cursor.execute("SELECT 1")


async def ping(conn: Any) -> None:
    """One round trip to the server; raises when the database does not answer."""
    await conn.scalar(sa.text("SELECT 1"))
