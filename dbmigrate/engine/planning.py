"""Planning: one database's migration state read from its bookkeeping, and the plan a migrate
runs, decided under the migration lock.

`read_state` reads what the database has applied (recorder.py) against the target's files,
through its baseline (baselines.py); `locked` holds the migration lock (lock.py) and yields the
state read under it; `planned` is a migrate's whole first phase: the state checked and planned
(state.py), and, when there is something to apply, planned again under the lock (a runner we
waited for may have applied everything).

Invariant: a plan that will be applied was made from a state read under the lock, and is held
under it until the block ends. Without work to do, no lock is taken: a read-only look at the
bookkeeping answers the common case, "nothing to do", without queueing behind another runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine import baselines, bookkeeping, failures, recorder
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.lock import migration_lock
from dbmigrate.engine.state import MigrationState, describe_left, forwards_plan, left_for_later
from dbmigrate.engine.target import Target


@dataclass(frozen=True)
class Plan:
    """What a migrate applies, the state it was planned from, and what it says once it has run."""

    state: MigrationState
    files: list[MigrationFile]
    closing: list[str]  # "up to date", post-deploy migrations left pending: said after the run


async def read_state(target: Target, conn: asyncpg.Connection) -> MigrationState:
    try:
        applied, failed = await recorder.read(conn, target.database.app)
    except bookkeeping.NotPiccolosTable as error:
        raise UserError(f"{target.name}: {error}") from None
    state = MigrationState(database=target.name, files=list(target.files), applied=applied, failed=failed)
    return baselines.effective(state, target.baseline)  # the baseline, or the history this database has


@asynccontextmanager
async def locked(target: Target, conn: asyncpg.Connection) -> AsyncIterator[MigrationState]:
    """Hold the database's migration lock; yield the state read under it."""
    async with migration_lock(conn, target.name, target.lock_wait_seconds):
        try:
            await bookkeeping.ensure_tables(conn)
        except bookkeeping.NotPiccolosTable as error:
            raise UserError(f"{target.name}: {error}") from None
        except asyncpg.PostgresError as error:
            raise failures.bookkeeping_refused(target.name, error) or error from None
        yield await read_state(target, conn)


async def plan_forwards(
    target: Target, conn: asyncpg.Connection, to: str | None, allow_out_of_order: bool, phase: str | None
) -> Plan:
    """The plan of a migrate, read without the lock (a dry run's, or the look before taking it)."""
    return _planned(target.name, await read_state(target, conn), to, allow_out_of_order, phase)


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
    async with locked(target, conn) as state:
        yield _planned(target.name, state, to, allow_out_of_order, phase)


def _planned(name: str, state: MigrationState, to: str | None, allow_out_of_order: bool, phase: str | None) -> Plan:
    state.check_integrity()
    files = forwards_plan(state, to, allow_out_of_order, phase)
    left = left_for_later(forwards_plan(state, to, True), phase)
    closing = (
        [] if files else [f"{name}: {'no pre-deploy migration pending' if left else 'up to date, nothing to migrate'}"]
    )
    return Plan(state, files, closing + ([describe_left(name, left)] if left else []))
