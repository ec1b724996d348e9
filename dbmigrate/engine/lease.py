"""The lease lock: the migration lock through a pooler in transaction mode (PgBouncer).

There, no session outlives a transaction, so a session advisory lock means nothing. Instead, one
row per database in table `dbmigrate_lock` says who holds the lock and until when:

  * taking it is one short statement: claim the row if it is free or its lease has lapsed,
    skipping it while another transaction has it locked (waiters poll, as for the advisory lock);
  * the holder renews the lease every third of its length, from a task on a connection of its
    own (the migrating connection may be busy for the whole of a long migration); a killed
    holder stops renewing, so its lease lapses after ORION_LOCK_LEASE seconds (default 30);
  * the fence: each migration transaction first locks the row `FOR KEY SHARE` where the owner is
    still us, and fails if it is not. Renewal (a plain UPDATE) does not conflict with that lock,
    but claiming (`FOR UPDATE`) does, so nobody can take the lease over while a transaction of
    the holder is open, even a killed holder's transaction the server has not ended yet; and a
    holder whose lease lapsed and was taken over cannot run another migration. So each migration
    still runs once, and commits with its bookkeeping, in one transaction on one server
    connection (which PgBouncer keeps for the length of a transaction);
  * releasing it is one statement, on the holder's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine.recorder import who

TABLE_NAME = "dbmigrate_lock"
TABLE = f"public.{TABLE_NAME}"  # schema-qualified in every statement: a migration may change the search_path
LOCK_NAME = "migrate"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    name text PRIMARY KEY,
    owner text,
    holder text,
    acquired_at timestamptz,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
)
"""
_ADD_ROW = f"INSERT INTO {TABLE} (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"
# SKIP LOCKED: a row locked by the holder's open migration transaction (its fence), a renewal, or
# another claim is not free, whatever its expiry says.
_CLAIM = f"""
WITH free AS (
    SELECT name FROM {TABLE}
    WHERE name = $1 AND (owner IS NULL OR expires_at <= clock_timestamp())
    FOR UPDATE SKIP LOCKED
)
UPDATE {TABLE} AS l
SET owner = $2, holder = $3, acquired_at = clock_timestamp(),
    expires_at = clock_timestamp() + make_interval(secs => $4)
FROM free WHERE l.name = free.name
RETURNING true
"""
_RENEW = f"""
UPDATE {TABLE} SET expires_at = clock_timestamp() + make_interval(secs => $3)
WHERE name = $1 AND owner = $2 RETURNING true
"""
_RELEASE = f"UPDATE {TABLE} SET owner = NULL, holder = NULL, expires_at = '-infinity' WHERE name = $1 AND owner = $2"
# The fence also sets client_connection_check_interval for the transaction (a startup parameter on
# a direct connection): if the runner dies mid-statement, PgBouncer closes the server connection and
# the server notices within a second, ending the transaction that keeps the lease from being claimed.
_FENCE = f"""
SELECT set_config('client_connection_check_interval', '1000', true) IS NOT NULL
FROM {TABLE} WHERE name = $1 AND owner = $2 FOR KEY SHARE
"""
_HOLDER = f"""
SELECT holder, round(extract(epoch FROM clock_timestamp() - acquired_at))::int AS held,
       round(extract(epoch FROM expires_at - clock_timestamp()))::int AS left
FROM {TABLE} WHERE name = $1 AND owner IS NOT NULL
"""


# How the migration lock is waited for (lock.wait_for, the same for the advisory lock): given how to
# try once and how to say who holds it.
Wait = Callable[[Callable[[], Awaitable[bool]], Callable[[], Awaitable[str]]], Awaitable[None]]


@dataclass
class Lease:
    database: str
    owner: str
    seconds: float
    lost: str | None = None  # why renewal stopped, when it did


@asynccontextmanager
async def lease_lock(conn, database: str, wait: Wait) -> AsyncIterator[Lease]:
    """Hold the lease of the connected database's migration lock for the block (see module doc),
    claimed by `wait` (lock.wait_for)."""
    seconds = float(getattr(conn, "lease_seconds", 30.0))
    lease = Lease(database, uuid.uuid4().hex, seconds)
    await _ensure_table(conn)
    say(
        f"{database}: through a connection pooler in transaction mode (PgBouncer): the migration lock is a lease "
        f"in table {TABLE_NAME}, renewed every {seconds / 3:g} s, lapsing {seconds:g} s after its holder stops"
    )
    holder = f"{who()} ({getattr(conn, 'label', None) or 'dbmigrate'})"
    await wait(lambda: _claim(conn, lease, holder), lambda: describe_holder(conn))
    renewer = asyncio.create_task(_renew(conn, lease))
    conn.lease = lease
    try:
        yield lease
    except BaseException:
        conn.lease = None
        renewer.cancel()
        with contextlib.suppress(BaseException):
            await renewer
        with contextlib.suppress(Exception):  # the error that got us here is the one to report
            await conn.execute(_RELEASE, LOCK_NAME, lease.owner)
        raise
    conn.lease = None
    renewer.cancel()
    with contextlib.suppress(BaseException):
        await renewer
    released = await conn.execute(_RELEASE, LOCK_NAME, lease.owner)
    if released != "UPDATE 1":
        say(
            f"{database}: the migration lock's lease had lapsed by the end of the run ({lease.lost or 'not renewed'});"
            " every migration checked that it still held it before running, so none ran twice"
        )


async def fence(conn, what: str) -> None:
    """Inside a migration transaction: lock our lease row until commit, or refuse if it is not ours."""
    lease: Lease | None = getattr(conn, "lease", None)
    if lease is None:
        return
    if not await conn.fetchval(_FENCE, LOCK_NAME, lease.owner):
        raise UserError(
            f"{lease.database}: lost the migration lock before {what}: its lease lapsed "
            f"({lease.lost or 'not renewed'}) and another runner took it over; {what} did not run. "
            "Run migrate again; if this recurs, raise "
            "ORION_LOCK_LEASE or give the pooler room for one more connection per runner"
        )


async def _ensure_table(conn) -> None:
    for attempt in range(5):
        try:
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
                await conn.execute(_CREATE)
            await conn.execute(_ADD_ROW, LOCK_NAME)
            return
        except (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError, asyncpg.DuplicateObjectError):
            await asyncio.sleep(0.05 * (attempt + 1))  # another runner created it at the same moment
    await conn.execute(_ADD_ROW, LOCK_NAME)


async def _claim(conn, lease: Lease, holder: str) -> bool:
    return bool(await conn.fetchval(_CLAIM, LOCK_NAME, lease.owner, holder, lease.seconds))


async def describe_holder(conn) -> str:
    row = await conn.fetchrow(_HOLDER, LOCK_NAME)
    if row is None:
        return "holder gone"
    if row["left"] is not None and row["left"] < 0:
        return (
            f"a lease of {row['holder']}, lapsed {-row['left']} s ago, whose last migration transaction is still "
            "open on the server"
        )
    return f"a lease of {row['holder']}, held {row['held']} s, lapsing in {row['left']} s unless renewed"


async def _renew(conn, lease: Lease) -> None:
    """Renew every third of the lease on a connection of our own, until cancelled or lost."""
    renewing = None
    try:
        while True:
            await asyncio.sleep(lease.seconds / 3)
            try:
                if renewing is None:
                    renewing = await conn.reopen()
                if not await renewing.fetchval(_RENEW, LOCK_NAME, lease.owner, lease.seconds, timeout=lease.seconds):
                    lease.lost = "another runner took it over"
                    return
                lease.lost = None
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                # Try again next time; the fence keeps migrations safe if the lease lapses meanwhile.
                lease.lost = f"renewal failed: {type(error).__name__}"
                if renewing is not None:
                    with contextlib.suppress(Exception):
                        await renewing.close(timeout=1)
                renewing = None
    finally:
        if renewing is not None:
            with contextlib.suppress(Exception):
                await renewing.close(timeout=5)
