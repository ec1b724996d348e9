"""The reset lock: how a reset and the migrators of the database it resets keep out of each other's way.

A reset (commands/reset.py) drops, creates, migrates and seeds a database while holding this lock:
a session advisory lock on the server's maintenance database `postgres` (the database itself is
dropped, so its lock cannot live inside it), two keys: RESET_LOCK_CLASS and the CRC of the
database's name, so resets of different databases never wait for each other and the migration
lock (engine/lock.py, one key) never collides with it.

Invariant: a migrator never fails because a reset is under way. One that finds its database
missing, or loses its connection because the reset dropped the database under it, asks whether a
reset of that database holds the lock; if one does, it waits for the reset to end (bounded by
ORION_MIGRATE_LOCK_WAIT) and tries again, against the database the reset made. Only when no reset
holds the lock is the database really missing (or the connection really lost), and that is said.
"""

from __future__ import annotations

import contextlib
import sys
import zlib

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.polling import poll
from dbmigrate.core.urls import database_name, with_database
from dbmigrate.server import pooling

RESET_LOCK_CLASS = int.from_bytes(b"dbrs", "big") - 2**31  # a signed int4
MAINTENANCE_DATABASE = "postgres"
WAITER = "dbmigrate waiting for a reset of"  # the application_name of a waiter's connection

_HELD = """
SELECT EXISTS (
    SELECT FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
"""


def reset_key(dbname: str) -> int:
    """The second key of the reset lock of database `dbname` (a signed int4)."""
    return zlib.crc32(dbname.encode()) - 2**31


async def reset_holds(conn: asyncpg.Connection, dbname: str) -> bool:
    """Whether a reset of `dbname` holds the reset lock (`conn`: on the maintenance database)."""
    return await conn.fetchval(_HELD, RESET_LOCK_CLASS % 2**32, reset_key(dbname) % 2**32)


async def wait_for_reset(source, url: str) -> bool:
    """If a reset of the database at `url` is under way, wait for it to end and return True; False
    when none is (or the maintenance database cannot be asked: then nothing is known of a reset).
    `source`: a Target or Settings (timeouts, pooler, ORION_MIGRATE_LOCK_WAIT)."""
    dbname = database_name(url)
    try:
        maintenance = with_database(url, MAINTENANCE_DATABASE)
        conn = await pooling.open_connection(maintenance, source, f"{WAITER} {dbname}"[:63])
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    try:
        if not await reset_holds(conn, dbname):
            return False
        wait = source.lock_wait_seconds

        async def ended() -> bool:
            return not await reset_holds(conn, dbname)

        async def timed_out() -> UserError:
            return UserError(
                f"{dbname}: a reset of it is under way and still was after {wait:g} s: retry when it ends, "
                "or raise ORION_MIGRATE_LOCK_WAIT"
            )

        print(f"{dbname}: waiting for the reset under way to end (up to {wait:g} s)", file=sys.stderr, flush=True)
        await poll(ended, wait, timed_out)
        return True
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=5)
