"""The executor: applies or reverts one database's migrations, under its lock, one transaction each.

For every migration, the schema change and its bookkeeping rows commit together or not at all
(see recorder.py). Every migration statement runs under a lock_timeout and a statement_timeout;
a transactional migration that times out waiting for a lock is retried with backoff. Before
taking the lock, a read-only look at the bookkeeping answers the common case, "nothing to do",
without importing Piccolo or queueing behind another runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from dbmigrate import connection, loader, recorder
from dbmigrate.config import Database, Settings
from dbmigrate.errors import UserError
from dbmigrate.loader import LoadedMigration, MigrationFile
from dbmigrate.lock import migration_lock
from dbmigrate.output import captured_stdout, say
from dbmigrate.state import MigrationState, backwards_plan, find, forwards_plan

_RETRY_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


@asynccontextmanager
async def connected(settings: Settings, database: Database, purpose: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connection.connect(settings, connection.url_for(settings, database), purpose)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):  # a dead server: nothing left to close politely
            await conn.close(timeout=5)


async def read_state(settings: Settings, database: Database, conn: asyncpg.Connection) -> MigrationState:
    files = loader.discover(settings.project_root, database)
    return MigrationState(
        database=database.name,
        files=files,
        applied=await recorder.applied(conn, database.app),
        failed=await recorder.failed(conn, database.app),
    )


@asynccontextmanager
async def locked_state(settings: Settings, database: Database, purpose: str) -> AsyncIterator[tuple]:
    """A connection holding the database's migration lock, with the state read under it."""
    async with (
        connected(settings, database, f"{purpose} {database.name}") as conn,
        _locked(settings, database, conn) as state,
    ):
        yield conn, state


@asynccontextmanager
async def _locked(settings: Settings, database: Database, conn: asyncpg.Connection) -> AsyncIterator[MigrationState]:
    async with migration_lock(conn, database.name, settings.lock_wait_seconds):
        await recorder.ensure_tables(conn)
        yield await read_state(settings, database, conn)


async def migrate(
    settings: Settings, database: Database, to: str | None = None, allow_out_of_order: bool = False
) -> list[str]:
    """Apply pending migrations of `database` (up to `to`); return the IDs applied."""
    async with connected(settings, database, f"migrate {database.name}") as conn:
        plan = forwards_plan(await _checked_state(settings, database, conn), to, allow_out_of_order)
        if plan:
            async with _locked(settings, database, conn) as state:
                # Plan again under the lock: a runner we waited for may have applied everything.
                state.check_integrity()
                plan = forwards_plan(state, to, allow_out_of_order)
                for migration in plan:
                    await _apply(settings, database, conn, await loader.load(migration, settings.project_root), False)
    if not plan:
        say(f"{database.name}: up to date, nothing to migrate")
    return [m.id for m in plan]


async def _checked_state(settings: Settings, database: Database, conn: asyncpg.Connection) -> MigrationState:
    state = await read_state(settings, database, conn)
    state.check_integrity()
    return state


async def rollback(
    settings: Settings, database: Database, steps: int | None = None, to: str | None = None
) -> list[str]:
    """Revert the last applied migration (or the last `steps`, or all after `to`); return the IDs."""
    async with locked_state(settings, database, "down") as (conn, state):
        plan = backwards_plan(state, steps, to)
        loaded = [await _loadable_for_rollback(settings, database, state, m) for m in plan]
        for migration in loaded:
            await _apply(settings, database, conn, migration, True)
        if not plan:
            say(f"{database.name}: nothing applied after {find(state.files, to or '', database.name).id}")
        return [m.file.id for m in loaded]


async def dry_run(
    settings: Settings,
    database: Database,
    backwards: bool,
    to: str | None = None,
    steps: int | None = None,
    allow_out_of_order: bool = False,
) -> None:
    """Print the SQL `migrate` or `down` would run, in a read-only transaction that is rolled back."""
    async with connected(settings, database, f"dry-run {database.name}") as conn:
        if backwards:
            state = await read_state(settings, database, conn)
            plan = [
                await _loadable_for_rollback(settings, database, state, m) for m in backwards_plan(state, steps, to)
            ]
        else:
            pending = forwards_plan(await _checked_state(settings, database, conn), to, allow_out_of_order)
            plan = [await loader.load(m, settings.project_root) for m in pending]
        if not plan:
            say(f"-- {database.name}: nothing to run")
        for migration in plan:
            say(f"-- {database.name}: {migration.file.id} ({'backwards' if backwards else 'forwards'})")
            say(await preview_sql(conn, migration, backwards))


async def repair(settings: Settings, database: Database) -> list[str]:
    """Accept the files as they are now: record current checksums, forget failures and vanished files."""
    changes: list[str] = []
    async with locked_state(settings, database, "repair") as (conn, state), conn.transaction():
        for migration in state.modified + state.unverified:
            await recorder.record_checksum(conn, database.app, migration.id, migration.checksum)
            changes.append(f"recorded the current checksum of {migration.id}")
        for migration_id in state.missing:
            await recorder.record_file_removed(conn, database.app, migration_id)
            changes.append(f"accepted that the file of applied migration {migration_id} is gone")
        for migration_id in state.failed:
            await recorder.forget_failure(conn, database.app, migration_id)
            changes.append(f"cleared the failure of {migration_id} (it is still not applied)")
    for change in changes or ["nothing to repair"]:
        say(f"{database.name}: {change}")
    return changes


async def baseline(settings: Settings, database: Database, to: str) -> list[str]:
    """Mark migrations up to `to` as applied without running them, on a database with none recorded."""
    async with locked_state(settings, database, "baseline") as (conn, state):
        target = find(state.files, to, database.name)
        if state.applied:
            raise UserError(
                f"{database.name}: already has applied migrations (last {max(state.applied)}); "
                "baseline is only for a database that predates the framework"
            )
        marked = [m for m in state.files if m.id <= target.id]
        async with conn.transaction():
            for migration in marked:
                await recorder.record_applied(conn, database.app, migration.id, migration.checksum, None)
    say(f"{database.name}: marked {len(marked)} migration(s) as applied without running them, up to {target.id}")
    return [m.id for m in marked]


async def _loadable_for_rollback(
    settings: Settings, database: Database, state: MigrationState, migration: MigrationFile | str
) -> LoadedMigration:
    if isinstance(migration, str):
        folder = loader.migrations_folder(settings.project_root, database)
        raise UserError(
            f"{database.name}: applied migration {migration} has no file in "
            f"{folder.relative_to(settings.project_root)}; restore it before rolling back"
        )
    if migration in state.modified:
        raise UserError(
            f"{database.name}: {migration.id} was modified after it was applied, so its backwards steps may not "
            "undo what ran; restore the file, or `make db-migrate-repair` if the change is deliberate"
        )
    loaded = await loader.load(migration, settings.project_root)
    if not is_reversible(loaded):
        raise UserError(
            f"{database.name}: migration {migration.id} cannot be rolled back: it has no backwards steps "
            f"({migration.relative_path(settings.project_root)}); write a new migration that undoes it instead"
        )
    return loaded


def is_reversible(migration: LoadedMigration) -> bool:
    """False when running backwards would not undo what forwards did."""
    from dbmigrate.sql import SQLMigration

    manager = migration.manager
    if isinstance(manager, SQLMigration):
        return not manager.irreversible
    # Piccolo runs raw forwards steps with no raw backwards steps as "nothing to undo".
    return not (manager.raw and not manager.raw_backwards)


async def _apply(
    settings: Settings, database: Database, conn: asyncpg.Connection, migration: LoadedMigration, backwards: bool
) -> None:
    retries = migration.lock_retries if migration.lock_retries is not None else settings.lock_retries
    if not migration.transactional:
        retries = 0  # a half-done non-transactional migration must not be blindly rerun
    started = time.perf_counter()
    for attempt in range(retries + 1):
        try:
            await _run_once(settings, database, conn, migration, backwards, started)
            break
        except UserError:
            raise
        except Exception as error:
            if isinstance(error, asyncpg.LockNotAvailableError) and attempt < retries:
                pause = _RETRY_BACKOFF_SECONDS[min(attempt, len(_RETRY_BACKOFF_SECONDS) - 1)]
                say(f"{database.name}: {migration.file.id} hit lock_timeout on a busy table; retrying in {pause:g} s")
                await asyncio.sleep(pause)
                continue
            if not migration.transactional and not backwards and not _connection_lost(error):
                # Partly applied, perhaps, and not recorded as applied: status must say so.
                with contextlib.suppress(Exception):
                    await recorder.record_failure(
                        conn, database.app, migration.file.id, migration.file.checksum, _error_text(error)
                    )
            raise _failure(settings, database, migration, backwards, error, attempts=attempt + 1) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    say(f"{database.name}: {'reverted' if backwards else 'applied'} {migration.file.id} ({elapsed_ms:.0f} ms)")


async def _run_once(
    settings: Settings,
    database: Database,
    conn: asyncpg.Connection,
    migration: LoadedMigration,
    backwards: bool,
    started: float,
) -> None:
    from dbmigrate.piccolo_engine import pinned

    lock_timeout = migration.lock_timeout or settings.lock_timeout
    statement_timeout = migration.statement_timeout or settings.statement_timeout
    set_timeouts = "SELECT set_config('lock_timeout', $1, $3), set_config('statement_timeout', $2, $3)"
    with pinned(conn), captured_stdout():  # Piccolo prints progress; we say one line per migration
        if migration.transactional:
            async with _transaction(conn, migration):
                await conn.execute(set_timeouts, lock_timeout, statement_timeout, True)
                await _run_steps(conn, migration, backwards)
                await _record(conn, database, migration, backwards, started)
        else:
            await conn.execute(set_timeouts, lock_timeout, statement_timeout, False)
            await _run_steps(conn, migration, backwards)
            await conn.execute("RESET lock_timeout; RESET statement_timeout")
            await _record(conn, database, migration, backwards, started)


def _transaction(conn: asyncpg.Connection, migration: LoadedMigration):
    """The migration's transaction. A Piccolo migration gets the engine's (routed to `conn`), so
    that the transaction Piccolo opens in run() nests into it and commits with the bookkeeping."""
    if migration.is_sql:
        return conn.transaction()
    from dbmigrate.piccolo_engine import framework_engine

    return framework_engine().transaction()


async def _run_steps(conn: asyncpg.Connection, migration: LoadedMigration, backwards: bool) -> None:
    if migration.is_sql:
        # Straight on the connection: no engine lookup, so no import of piccolo_conf (and black).
        await migration.manager.execute(conn, backwards)
    else:
        await migration.manager.run(backwards=backwards)


async def _record(
    conn: asyncpg.Connection, database: Database, migration: LoadedMigration, backwards: bool, started: float
) -> None:
    if backwards:
        await recorder.record_unapplied(conn, database.app, migration.file.id)
    else:
        duration_ms = round((time.perf_counter() - started) * 1000)
        await recorder.record_applied(conn, database.app, migration.file.id, migration.file.checksum, duration_ms)


async def preview_sql(conn: asyncpg.Connection, migration: LoadedMigration, backwards: bool) -> str:
    """The SQL of `migration`, as Piccolo's preview prints it, plus what our SQL steps hold."""
    from dbmigrate.piccolo_engine import pinned

    manager = migration.manager
    manager.preview = True
    notes = [
        f"-- raw Python step {getattr(step, '__name__', step)!r}: its SQL is only known when it runs"
        for step in (manager.raw_backwards if backwards else manager.raw)
    ]
    transaction = conn.transaction(readonly=True)
    await transaction.start()
    try:
        with pinned(conn), captured_stdout() as printed:
            await manager.run(backwards=backwards)
    finally:
        await transaction.rollback()
    # Drop Piccolo's progress line ("  - 002_x [preview forwards]... ").
    lines = [line for line in printed.getvalue().splitlines() if "[preview " not in line]
    return "\n".join(notes + lines).strip() + "\n"


def _failure(
    settings: Settings,
    database: Database,
    migration: LoadedMigration,
    backwards: bool,
    error: Exception,
    attempts: int = 1,
) -> UserError:
    where = f"{database.name}: {'rolling back' if backwards else 'applying'} {migration.file.id}"
    message = _error_text(error)
    if isinstance(error, asyncpg.LockNotAvailableError):
        timeout = migration.lock_timeout or settings.lock_timeout
        message = (
            f"a table it needs stayed locked past lock_timeout {timeout} ({attempts} attempt(s)); retry when the "
            "table is quieter, or set LOCK_TIMEOUT in the migration"
        )
    elif isinstance(error, asyncpg.QueryCanceledError):
        timeout = migration.statement_timeout or settings.statement_timeout
        message = (
            f"statement_timeout {timeout} reached ({message}); set STATEMENT_TIMEOUT in the migration to allow more"
        )
    if not migration.transactional:
        shown = "" if backwards else " (status shows it)"
        return UserError(
            f"{where} failed midway and is NOT transactional, so it may be partly done{shown}: {message}. "
            "Undo or finish its statements by hand (e.g. DROP INDEX CONCURRENTLY IF EXISTS an INVALID index), "
            "then run the command again"
        )
    if _connection_lost(error):
        return UserError(
            f"{where}: lost the connection to the server ({message}); its transaction did not commit: "
            "run the command again when the server is back"
        )
    return UserError(f"{where} failed and was rolled back; no later migration ran: {message}")


def _connection_lost(error: Exception) -> bool:
    """The server went away (shut down, crashed, network gone), rather than refusing a statement."""
    return isinstance(
        error,
        (
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.InterfaceError,
            asyncpg.OperatorInterventionError,  # class 57: admin shutdown, crash shutdown
            ConnectionError,  # reset, refused, broken pipe; not every OSError a raw step may raise
        ),
    ) and not isinstance(error, asyncpg.QueryCanceledError)


def _error_text(error: Exception) -> str:
    text = connection.first_line(error)
    return f"{type(error).__name__}: {text}" if isinstance(error, asyncpg.PostgresError) else text
