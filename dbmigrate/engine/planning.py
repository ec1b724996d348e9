"""Planning: one database's migration state read from its bookkeeping, and the plan a migrate
runs, decided under the migration lock.

`read_state` reads what the database has applied (recorder.py) against the target's files,
through its baseline (baselines.py); `locked` holds the migration lock (lock.py) and yields the
state read under it; `planned` is a migrate's whole first phase: the state read, checked and planned
(state.migrate_plan), and, when there is something to apply, planned again under the lock (a runner we
waited for may have applied everything).

Invariant: a plan that will be applied was made from a state read under the lock, and is held
under it until the block ends. Without work to do, no lock is taken: a read-only look at the
bookkeeping answers the common case, "nothing to do", without queueing behind another runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine import baselines, bookkeeping, recorder
from dbmigrate.engine.state import MigrationState, Plan, migrate_plan
from dbmigrate.engine.target import Target


async def read_state(target: Target, conn: asyncpg.Connection, creating_tables: bool = False) -> MigrationState:
    """What the database has applied against the target's files, through its baseline;
    `creating_tables`: under the lock, about to write, the bookkeeping tables are created first."""
    if creating_tables:
        await _ensure_tables(target, conn)
    try:
        applied, failed = await recorder.read(conn, target.database.app)
    except bookkeeping.NotPiccolosTable as error:
        raise UserError(f"{target.name}: {error}") from None
    state = MigrationState(database=target.name, files=list(target.files), applied=applied, failed=failed)
    return baselines.effective(state, target.baseline)  # the baseline, or the history this database has


async def _ensure_tables(target: Target, conn: asyncpg.Connection) -> None:
    try:
        await bookkeeping.ensure_tables(conn)
    except bookkeeping.NotPiccolosTable as error:
        raise UserError(f"{target.name}: {error}") from None
    except asyncpg.PostgresError as error:
        from dbmigrate.engine import failures  # the failures only when there is work: start-up time

        raise failures.bookkeeping_refused(target.name, error) or error from None


@asynccontextmanager
async def locked(target: Target, conn: asyncpg.Connection) -> AsyncIterator[MigrationState]:
    """Hold the database's migration lock; yield the state read under it."""
    from dbmigrate.engine.lock import migration_lock  # the lock and its lease only when there is work: start-up time

    async with migration_lock(conn, target.name, target.lock_wait_seconds):
        yield await read_state(target, conn, creating_tables=True)


async def plan_forwards(
    target: Target,
    conn: asyncpg.Connection,
    to: str | None,
    allow_out_of_order: bool,
    phase: str | None,
    creating_tables: bool = False,
) -> Plan:
    """The plan of a migrate: read without the lock (a dry run's, or the look before taking it), or
    under it (`creating_tables`)."""
    state = await read_state(target, conn, creating_tables)
    return migrate_plan(state, to, allow_out_of_order, phase)


@asynccontextmanager
async def planned(
    target: Target, conn: asyncpg.Connection, to: str | None, allow_out_of_order: bool, phase: str | None
) -> AsyncIterator[Plan]:
    """The plan of a migrate (up to `to`; PHASE=pre: the pre-deploy ones), held under the migration
    lock for the block when it applies anything."""
    plan = await plan_forwards(target, conn, to, allow_out_of_order, phase)
    if not plan.files:
        yield plan
        return
    from dbmigrate.engine.lock import migration_lock  # see locked

    async with migration_lock(conn, target.name, target.lock_wait_seconds):
        yield await plan_forwards(target, conn, to, allow_out_of_order, phase, creating_tables=True)
