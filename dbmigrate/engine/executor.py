"""The executor: plans and applies (or reverts) one database's migrations, under its lock.

It works only through the migration interface (migration.py) and knows no kind of migration.
Everything it needs about the database arrives as a Target (target.py); what it has to say goes
to the current reporter (reporting.py); its errors are worded by failures.py.

For every transactional migration, the schema change and its bookkeeping rows commit together or
not at all (recorder.py); one whose SQL is known (Migration.one_query) is sent with its
transaction, timeouts and bookkeeping as a single query, one round trip. A non-transactional one
runs one statement at a time (stepwise.py), leaving a trail in the bookkeeping after each (so
status can say what an interrupted one left behind), and a rerun resumes after the statements
that finished, first dropping an INVALID index a failed build left. `down` refuses while a later
migration failed midway. Every migration statement runs under a lock_timeout and a
statement_timeout; a transactional migration that times out waiting for a lock is retried with
backoff. A staged migration (staged.py) runs as short transactions of its own, each fenced, and is
recorded with its last one. Before taking the lock, a read-only look at the bookkeeping answers
the common case, "nothing to do", without importing Piccolo or queueing behind another runner.
Every migration a run will apply is loaded and checked before the first one runs, so an unfilled
file or a syntax error stops the run with nothing changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import baselines, bookkeeping, failures, leftovers, recorder, stepwise, told_durations
from dbmigrate.engine.files import order_key
from dbmigrate.engine.lease import fence
from dbmigrate.engine.lock import migration_lock
from dbmigrate.engine.migration import ENDS_THE_RUN
from dbmigrate.engine.state import MigrationState, backwards_plan, describe_left, find, forwards_plan, left_for_later
from dbmigrate.engine.target import Target
from dbmigrate.server import pooling

if TYPE_CHECKING:  # loading a migration imports Piccolo and pglast; a no-op migrate never does
    from dbmigrate.engine.files import MigrationFile
    from dbmigrate.engine.migration import Migration
    from dbmigrate.engine.recorder import FailedMigration

_RETRY_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


def _timeouts(target: Target, migration: Migration) -> tuple[str, str]:
    """(lock_timeout, statement_timeout) for `migration`: its own, else the configured ones."""
    return (
        migration.options.lock_timeout or target.lock_timeout,
        migration.options.statement_timeout or target.statement_timeout,
    )


def timeouts_prelude(lock_timeout: str, statement_timeout: str, local: bool) -> str:
    """SET [LOCAL] for both timeouts as one query (durations are validated by
    config.postgres_duration; quoted all the same), after RESET ALL: each migration starts from
    the session's defaults, whatever an earlier one SET (a search_path, as pg_dump's output does)."""
    scope = "SET LOCAL" if local else "SET"
    quoted = [value.replace("'", "''") for value in (lock_timeout, statement_timeout)]
    return f"RESET ALL; {scope} lock_timeout = '{quoted[0]}'; {scope} statement_timeout = '{quoted[1]}'"


async def load(target: Target, migration: MigrationFile) -> Migration:
    """Import and build one migration. The loader is imported here rather than at the top because
    it imports Piccolo and pglast, which a no-op migrate never needs (start-up time)."""
    from dbmigrate.engine import loader

    return await loader.load(migration, target.project_root)


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


async def migrate(
    target: Target, to: str | None = None, allow_out_of_order: bool = False, phase: str | None = None
) -> list[str]:
    """Apply pending migrations of `target` (up to `to`; PHASE=pre: the pre-deploy ones); return the IDs applied."""
    async with target.connected("migrate") as conn:
        state = await _checked_state(target, conn)
        plan = forwards_plan(state, to, allow_out_of_order, phase)
        if plan:
            async with locked(target, conn) as state:
                # Plan again under the lock: a runner we waited for may have applied everything.
                state.check_integrity()
                plan = forwards_plan(state, to, allow_out_of_order, phase)
                migrations = [await load(target, m) for m in plan]
                for migration in refuse_unsafe(target, migrations, conn):
                    await apply(target, conn, migration, backwards=False, trail=state.failed.get(migration.id))
    left = left_for_later(forwards_plan(state, to, True), phase)
    if not plan:
        say(f"{target.name}: {'no pre-deploy migration pending' if left else 'up to date, nothing to migrate'}")
    if left:
        say(describe_left(target.name, left))
    return [m.id for m in plan]


async def rollback(target: Target, steps: int | None = None, to: str | None = None) -> list[str]:
    """Revert the last applied migration (or the last `steps`, or all after `to`); return the IDs."""
    async with target.connected("down") as conn, locked(target, conn) as state:
        plan = backwards_plan(state, steps, to)
        _refuse_stranding(target, state, plan)
        migrations = [await _revertible(target, state, m, conn) for m in plan]
        for migration in refuse_unsafe(target, migrations, conn):
            if migration.origin:
                say(f"{target.name}: reverting {migration.id} {migration.origin}")
            await apply(target, conn, migration, backwards=True)
        if not plan:
            after = f" after {find(state.files, to, target.name).id}" if to else ""
            say(f"{target.name}: nothing to roll back{after}")
        return [m.id for m in migrations]


async def dry_run(
    target: Target, to: str | None = None, allow_out_of_order: bool = False, phase: str | None = None
) -> None:
    """Print the SQL `migrate` would run, changing nothing."""
    async with target.connected("dry-run") as conn:
        pending = forwards_plan(await _checked_state(target, conn), to, allow_out_of_order, phase)
        await _print_sql(target, conn, [await load(target, m) for m in pending], backwards=False)


async def dry_run_down(target: Target, steps: int | None = None, to: str | None = None) -> None:
    """Print the SQL `down` would run, changing nothing."""
    async with target.connected("dry-run") as conn:
        state = await read_state(target, conn)
        plan = [await _revertible(target, state, m, conn) for m in backwards_plan(state, steps, to)]
        await _print_sql(target, conn, plan, backwards=True)


async def _print_sql(target: Target, conn: asyncpg.Connection, plan: list[Migration], backwards: bool) -> None:
    refuse_unsafe(target, plan)
    if not plan:
        say(f"-- {target.name}: nothing to run")
    for migration in plan:
        say(f"-- {target.name}: {migration.id} ({'backwards' if backwards else 'forwards'})")
        say(await migration.preview(conn, backwards))


def refuse_unsafe(target: Target, migrations: list[Migration], conn: asyncpg.Connection | None = None) -> list:
    """`migrations`, once none is unsafe to run; else a UserError before anything runs: a
    migration's own problems, or (given the connection it would run on) a non-transactional
    migration through a pooler in transaction mode."""
    for migration in migrations:
        problems = migration.problems()
        if problems:
            where = migration.file.relative_path(target.project_root)
            raise UserError(f"{target.name}: {migration.id} ({where}) was not run: {problems[0]}")
        if conn is not None and not migration.transactional and not migration.staged:
            pooling.refuse_non_transactional(conn, target.name, migration.id)
    return migrations


async def _checked_state(target: Target, conn: asyncpg.Connection) -> MigrationState:
    state = await read_state(target, conn)
    state.check_integrity()
    return state


def _refuse_stranding(target: Target, state: MigrationState, plan: list) -> None:
    """Rolling back a migration while one numbered after it failed midway would leave that one's
    finished statements behind, on a schema they were not written for."""
    if not plan or not state.failed:
        return
    earliest = min(order_key(m if isinstance(m, str) else m.id) for m in plan)
    later = sorted((f for f in state.failed.values() if order_key(f.id) > earliest), key=lambda f: order_key(f.id))
    if later:
        failed = later[0]
        what = "was interrupted" if failed.interrupted else "FAILED"
        progress = failures.incomplete_progress(failed.statements_done, failed.statements_total, failed.last_statement)
        reverting = ", ".join(m if isinstance(m, str) else m.id for m in plan)
        raise UserError(
            f"{target.name}: nothing was rolled back: {failed.id} {what} midway ({progress}), and rolling back "
            f"{reverting} would leave its finished statements behind. Finish it first (fix it and migrate: it resumes "
            f"where it stopped), or undo its finished statements by hand and `make db-migrate-repair DB={target.name}`"
            ", then roll back"
        )


async def _revertible(target: Target, state: MigrationState, migration, conn: asyncpg.Connection) -> Migration:
    """The loaded migration to revert (its stored down copy when its file is gone: stored_down.py),
    or a UserError saying why it cannot be."""
    if isinstance(migration, str):
        from dbmigrate.engine import stored_down  # imports Piccolo and pglast: only a down without the file needs them

        return await stored_down.revertible(target, migration, conn)
    if migration in state.modified:
        raise UserError(
            f"{target.name}: {migration.id} was modified after it was applied, so its backwards steps may not "
            "undo what ran; restore the file, or `make db-migrate-repair` if the change is deliberate"
        )
    loaded = await load(target, migration)
    if not loaded.reversible:
        raise UserError(
            f"{target.name}: migration {migration.id} cannot be rolled back: {loaded.irreversible_reason} "
            f"({migration.relative_path(target.project_root)}); nothing was rolled back. Write a new migration "
            "that undoes it instead"
        )
    return loaded


async def apply(
    target: Target,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    trail: FailedMigration | None = None,
) -> None:
    """Run one migration forwards or backwards, with its bookkeeping, retrying lock timeouts
    (a transactional one only: each retry waits after its transaction was rolled back). `trail`:
    what an earlier run of this non-transactional migration left (stepwise.py)."""
    retries = migration.options.lock_retries if migration.options.lock_retries is not None else target.lock_retries
    if not migration.transactional:
        retries = 0  # a half-done non-transactional migration must not be blindly rerun
    if not backwards:
        await migration.render_down_copy()  # kept with its bookkeeping, so `down` needs no file
    started = time.perf_counter()
    for attempt in range(retries + 1):
        try:
            duration_ms = await _run_once(target, conn, migration, backwards, started, trail)
            break
        except UserError:
            raise
        except ENDS_THE_RUN as stop:  # sys.exit() in a raw step: rolled back, and said so
            error = RuntimeError(f"its code raised {type(stop).__name__}({stop}), which would end the run")
            raise await _failed(target, conn, migration, backwards, error, attempt + 1) from None
        except Exception as error:
            if isinstance(error, asyncpg.LockNotAvailableError) and attempt < retries:
                pause = _RETRY_BACKOFF_SECONDS[min(attempt, len(_RETRY_BACKOFF_SECONDS) - 1)]
                say(f"{target.name}: {migration.id} hit lock_timeout on a busy table; retrying in {pause:g} s")
                await asyncio.sleep(pause)
                continue
            raise await _failed(target, conn, migration, backwards, error, attempt + 1) from None
    say(f"{target.name}: {'reverted' if backwards else 'applied'} {migration.id} ({duration_ms} ms)")


async def _run_once(
    target: Target,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    started: float,
    trail: FailedMigration | None,
) -> int:
    """Run `migration` once; return the duration recorded (and so the one to print)."""
    lock_timeout, statement_timeout = _timeouts(target, migration)
    body = migration.one_query(backwards)
    if body is not None and getattr(conn, "lease", None) is None:  # a lease is fenced first: its own round trip
        return await _run_in_one_query(target, conn, migration, backwards, started, body)
    if migration.transactional:
        async with migration.transaction(conn, timeouts_prelude(lock_timeout, statement_timeout, local=True)):
            await fence(conn, migration.id)  # through PgBouncer: still our lease, until commit
            await migration.run(conn, backwards)
            return await _record(target, conn, migration, backwards, started)
    if migration.staged:
        return await _run_staged(target, conn, migration, backwards, started)
    await conn.execute(timeouts_prelude(lock_timeout, statement_timeout, local=False))
    await stepwise.run(target, conn, migration, backwards, trail)
    await conn.execute("RESET ALL")  # its timeouts, and whatever it SET (a search_path)
    async with conn.transaction():
        return await _record(target, conn, migration, backwards, started)


async def _run_in_one_query(
    target: Target, conn: asyncpg.Connection, migration: Migration, backwards: bool, started: float, body: str
) -> int:
    """BEGIN, the timeouts, the migration's SQL, its bookkeeping and COMMIT as one query: one round
    trip, and still all or nothing (an error skips the rest of the query, COMMIT included, and the
    transaction is rolled back). Returns the duration recorded, read back so that it is the one printed."""
    app = target.database.app
    if backwards:
        record = recorder.unapplied_statement(app, migration.id)
    else:
        offset_ms = (time.perf_counter() - started) * 1000
        record = recorder.applied_statement(app, migration.id, migration.file.checksum, offset_ms, migration.down_copy)
    prelude = timeouts_prelude(*_timeouts(target, migration), local=True)
    tell = ""
    if not backwards and not pooling.is_pooled(conn):  # told back on commit: no round trip to read it
        await told_durations.listen(conn)
        tell = f";\n{told_durations.tell_statement(app, migration.id)}"
    try:
        await conn.execute(f"BEGIN; {prelude};\n{body}\n;\n{record}{tell};\nCOMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    if backwards:
        return round((time.perf_counter() - started) * 1000)
    told = told_durations.take(conn, app, migration.id)
    return told if told is not None else await recorder.recorded_duration(conn, app, migration.id)


async def _run_staged(
    target: Target, conn: asyncpg.Connection, migration: Migration, backwards: bool, started: float
) -> int:
    """A staged migration (staged.py): its stages, each a self-contained transaction fenced like a
    transactional migration, then its last step and its bookkeeping in one transaction."""
    lock_timeout, statement_timeout = _timeouts(target, migration)
    retries = migration.options.lock_retries if migration.options.lock_retries is not None else target.lock_retries
    await migration.run_stages(
        conn, backwards, (lock_timeout, statement_timeout), lambda: fence(conn, migration.id), retries
    )
    async with migration.transaction(conn, timeouts_prelude(lock_timeout, statement_timeout, local=True)):
        await fence(conn, migration.id)
        await migration.finish(conn, backwards)
        return await _record(target, conn, migration, backwards, started)


async def _record(
    target: Target, conn: asyncpg.Connection, migration: Migration, backwards: bool, started: float
) -> int:
    duration_ms = round((time.perf_counter() - started) * 1000)
    if backwards:
        await recorder.record_unapplied(conn, target.database.app, migration.id)
    else:
        await recorder.record_applied(
            conn, target.database.app, migration.id, migration.file.checksum, duration_ms, migration.down_copy
        )
    return duration_ms


async def _failed(
    target: Target, conn: asyncpg.Connection, migration: Migration, backwards: bool, error: Exception, attempts: int
) -> UserError:
    """Record a non-transactional failure (when the connection still works) and word the error."""
    resume = None
    if not migration.transactional and not migration.staged and not backwards:
        unfinished = (await _unfinished(conn, target, migration.id)) if not failures.connection_lost(error) else None
        if unfinished is not None:
            resume = failures.Resume(
                unfinished.statements_done,
                unfinished.statements_total,
                unfinished.last_statement,
                await _left_invalid(conn, unfinished),
            )
            with contextlib.suppress(Exception):  # the migration's own error is the one to report
                await recorder.record_failure(conn, target.database.app, migration.id, failures.error_text(error))
    lock_timeout, statement_timeout = _timeouts(target, migration)
    return failures.migration_failed(
        target.name, migration, backwards, error, lock_timeout, statement_timeout, attempts, resume
    )


async def _left_invalid(conn: asyncpg.Connection, unfinished: FailedMigration) -> list[str]:
    """The INVALID indexes the statement that failed left (by the build its trail names)."""
    build = leftovers.IndexBuild.from_record(unfinished.building)
    if build is None:
        return []
    try:
        found = await leftovers.invalid_indexes(conn, build)
    except Exception:  # the migration's own error is the one to report
        return []
    return [index.qualified for index in found if leftovers.left_by(build, index)]


async def _unfinished(conn: asyncpg.Connection, target: Target, migration_id: str):
    try:
        return (await recorder.failed(conn, target.database.app)).get(migration_id)
    except Exception:
        return None
