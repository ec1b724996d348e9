"""reset: drop, create, migrate (concurrently) and seed, the story's db:reset. Never in production;
in staging only with CONFIRM.

Invariant: one reset of a database at a time, under the reset lock on the server's maintenance
database (server/resets.py: a reset drops the database, so its lock cannot live inside it);
migrators of that database meanwhile wait for it rather than finding it gone.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from dbmigrate.commands.common import NO_OPTIONS, Options, each, guard
from dbmigrate.commands.seed import seed
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.polling import poll
from dbmigrate.core.reporting import say
from dbmigrate.core.urls import database_name
from dbmigrate.engine import executor
from dbmigrate.engine.lock import describe_holder_of
from dbmigrate.engine.target import Target
from dbmigrate.server import connection
from dbmigrate.server.connection import connect, server_url, url_for
from dbmigrate.server.resets import RESET_LOCK_CLASS, reset_key


async def reset(settings: Settings, databases: list[Database], options: Options = NO_OPTIONS) -> None:
    """Drop, create, migrate (concurrently) and seed."""
    guard(settings, "reset", databases, options.confirm)
    await connection.prepare(settings, databases)
    # One reset of a database at a time: concurrent resets wait for each other, then run in turn.
    async with reset_lock(settings, databases):
        dropped = await connection.drop_databases(settings, databases)
        say(f"reset: dropped {', '.join(dropped) or 'nothing'}")
        created = await connection.create_missing_databases(settings, databases)
        say(f"reset: created {', '.join(created)}")
        await each([Target.resolve(settings, db) for db in databases], executor.migrate)
        await seed(settings, databases)


@asynccontextmanager
async def reset_lock(settings: Settings, databases: list[Database]) -> AsyncIterator[None]:
    """Hold the reset lock of every one of `databases` for the block: drop, create, migrate and seed.

    Waiters poll (bounded by ORION_MIGRATE_LOCK_WAIT), like the migration lock; the locks are
    taken in one order everywhere, so two resets of overlapping databases cannot deadlock.
    """
    keys = sorted({(server_url(settings, db), database_name(url_for(settings, db))) for db in databases})
    connections: dict[str, asyncpg.Connection] = {}
    try:
        for server, dbname in keys:
            if server not in connections:
                connections[server] = await connect(settings, server, "reset lock")
            await _acquire_reset_lock(connections[server], dbname, settings.lock_wait_seconds)
        yield
    finally:
        for conn in connections.values():
            with contextlib.suppress(Exception):  # closing the session releases its locks
                await conn.close(timeout=5)


async def _acquire_reset_lock(conn: asyncpg.Connection, dbname: str, wait_seconds: float) -> None:
    key = reset_key(dbname)

    async def timed_out() -> UserError:
        holder = await describe_holder_of(conn, RESET_LOCK_CLASS, key, objsubid=2)
        return UserError(
            f"{dbname}: another reset holds the reset lock ({holder}); waited {wait_seconds:g} s. "
            "Retry when it ends, or raise ORION_MIGRATE_LOCK_WAIT"
        )

    def waiting() -> None:
        print(f"reset: waiting for another reset of {dbname} (up to {wait_seconds:g} s)", file=sys.stderr)

    await poll(
        lambda: conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", RESET_LOCK_CLASS, key),
        wait_seconds,
        timed_out,
        waiting if wait_seconds > 1 else None,
    )
