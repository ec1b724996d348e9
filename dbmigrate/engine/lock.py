"""The migration lock: one runner at a time per database, everyone else waits, nobody deadlocks.

A session-level advisory lock (advisory locks are scoped to the current database, so each
database has its own). Waiters poll `pg_try_advisory_lock` instead of blocking in
`pg_advisory_lock`: a blocked waiter sits in a transaction that a `CREATE INDEX CONCURRENTLY` of
the holder would wait for, and PostgreSQL would abort one of them as a deadlock. The lock goes
with the connection, so a killed runner frees it. Through a pooler in transaction mode
(PgBouncer; the connection says so, see pooling.py) there is no session to hold it: the lock is
a lease row instead (lease.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.polling import poll
from dbmigrate.engine.lease import lease_lock
from dbmigrate.server import pooling

# Any fixed 64-bit number works; this one is b"dbmigrat" read as a big-endian integer.
LOCK_KEY = int.from_bytes(b"dbmigrat", "big")

_HOLDER = """
SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr, a.usename,
       round(extract(epoch FROM now() - a.backend_start))::int AS seconds
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
        SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $1 AND l.objid = $2 AND l.objsubid = $3
LIMIT 1
"""


@asynccontextmanager
async def migration_lock(conn: asyncpg.Connection, database: str, wait_seconds: float) -> AsyncIterator[None]:
    """Hold the migration lock of the connected database for the block: the advisory lock, or
    through PgBouncer in transaction mode a lease (lease.py). Either is waited for the one way,
    `wait_for`: the lease only says how to try once and who holds it."""
    if not pooling.is_pooled(conn):
        async with _advisory_lock(conn, database, wait_seconds):
            yield
    else:
        async with lease_lock(conn, database, functools.partial(wait_for, database, wait_seconds)):
            yield


async def wait_for(
    database: str,
    wait_seconds: float,
    try_once: Callable[[], Awaitable[bool]],
    holder: Callable[[], Awaitable[str]],
) -> None:
    """Poll `try_once` until it takes the lock; after `wait_seconds`, a UserError naming its `holder`."""

    async def timed_out() -> UserError:
        return UserError(
            f"{database}: another migration holds the lock ({await holder()}); "
            f"waited {wait_seconds:g} s. Retry when it ends, or raise ORION_MIGRATE_LOCK_WAIT"
        )

    await poll(try_once, wait_seconds, timed_out)


@asynccontextmanager
async def _advisory_lock(conn: asyncpg.Connection, database: str, wait_seconds: float) -> AsyncIterator[None]:
    await acquire(conn, database, wait_seconds)
    try:
        yield
    except BaseException:
        # The error that got us here is the one to report; a lost connection frees the lock anyway.
        with contextlib.suppress(Exception):
            await conn.fetchval("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        raise
    released = await conn.fetchval("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    if not released:
        raise UserError(
            f"{database}: the migration lock was not held at release; connect directly "
            "to PostgreSQL, not through PgBouncer in transaction mode"
        )


async def acquire(conn: asyncpg.Connection, database: str, wait_seconds: float) -> None:
    """Take the advisory lock, waiting up to `wait_seconds` (held until released or the session ends)."""
    await wait_for(database, wait_seconds, lambda: _try_advisory_lock(conn), lambda: describe_holder(conn))


async def _try_advisory_lock(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)


async def describe_holder(conn: asyncpg.Connection) -> str:
    return await describe_holder_of(conn, LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF, objsubid=1)


async def describe_holder_of(conn: asyncpg.Connection, classid: int, objid: int, objsubid: int) -> str:
    """Who holds an advisory lock of the connected database, as far as our role may see.

    pg_stat_activity hides another role's application, address and start time (NULL) unless we
    are a superuser or have pg_read_all_stats: say so instead of printing None.
    """
    row = await conn.fetchrow(_HOLDER, classid % 2**32, objid % 2**32, objsubid)
    if row is None:
        return "holder gone"
    if row["seconds"] is None:
        return (
            f"pid {row['pid']}, user {row['usename']}; its application, host and start are hidden from this role "
            "(pg_read_all_stats shows them)"
        )
    client = row["client_addr"] or "local socket"
    name = row["application_name"] or "no application_name"
    return f"pid {row['pid']}, {name}, user {row['usename']} from {client}, connected {row['seconds']} s"
