"""The runner: one migration run forwards or backwards, with its bookkeeping, its timeouts, its
retries and, when it fails, the one line that says so.

It works only through the migration interface (migration.py) and knows no kind of migration.
For every transactional migration, the schema change and its bookkeeping rows commit together or
not at all (recorder.py); one whose SQL is known (Migration.one_query) is sent with its
transaction, timeouts and bookkeeping as a single query, one round trip, and consecutive ones go
together, several such transactions in one query (apply_all). A non-transactional one
runs one statement at a time (stepwise.py), leaving a trail in the bookkeeping after each (so
status can say what an interrupted one left behind), and a rerun resumes after the statements
that finished, first dropping an INVALID index a failed build left. A staged migration
(staged.py) runs as short transactions of its own, each fenced, and is recorded with its last one.

Invariant: every migration statement runs under a lock_timeout and a statement_timeout (the
migration's own, else the configured ones, decided once per migration); only a transactional
migration that timed out waiting for a lock is retried (with backoff, after its transaction was
rolled back): a half-done non-transactional one is never blindly rerun. Of migrations sent
together, what applied is always those before the first that did not: it is the one reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import failures, leftovers, record_statements, recorder, stepwise, told_durations
from dbmigrate.engine.lease import fence
from dbmigrate.engine.migration import ENDS_THE_RUN
from dbmigrate.engine.target import Target
from dbmigrate.server import pooling

if TYPE_CHECKING:
    from dbmigrate.engine.migration import Migration
    from dbmigrate.engine.recorder import FailedMigration

_RETRY_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


@dataclass(frozen=True)
class Limits:
    """What one migration runs under, decided once: its timeouts (and the SET that applies them, in
    its transaction or for the session) and how often a lock timeout is retried."""

    lock_timeout: str
    statement_timeout: str
    retries: int
    in_transaction: str  # SET LOCAL of both timeouts
    in_session: str  # SET of both, for a migration that runs outside a transaction
    in_one_query: str  # both, and the moment it began, in one SELECT (`_one_query`)

    @classmethod
    def of(cls, target: Target, migration: Migration) -> Limits:
        """The migration's own timeouts and retries, else the configured ones."""
        options = migration.options
        lock_timeout = options.lock_timeout or target.lock_timeout
        statement_timeout = options.statement_timeout or target.statement_timeout
        return cls(
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            retries=options.lock_retries if options.lock_retries is not None else target.lock_retries,
            in_transaction=_timeouts_prelude(lock_timeout, statement_timeout, local=True),
            in_session=_timeouts_prelude(lock_timeout, statement_timeout, local=False),
            in_one_query=_one_query_prelude(lock_timeout, statement_timeout),
        )

    @property
    def timeouts(self) -> tuple[str, str]:
        return self.lock_timeout, self.statement_timeout


def _timeouts_prelude(lock_timeout: str, statement_timeout: str, local: bool) -> str:
    """SET [LOCAL] for both timeouts as one query (durations are validated by
    config.postgres_duration; quoted all the same), after RESET ALL: each migration starts from
    the session's defaults, whatever an earlier one SET (a search_path, as pg_dump's output does)."""
    scope = "SET LOCAL" if local else "SET"
    lock, statement = _quoted(lock_timeout), _quoted(statement_timeout)
    return f"RESET ALL; {scope} lock_timeout = {lock}; {scope} statement_timeout = {statement}"


def _one_query_prelude(lock_timeout: str, statement_timeout: str) -> str:
    """`_timeouts_prelude` in its transaction, and the moment it began (record_statements.BEGAN), as
    one SELECT: each statement of a query costs the server its own round of work."""
    lock, statement = _quoted(lock_timeout), _quoted(statement_timeout)
    return (
        f"RESET ALL; SELECT set_config('lock_timeout', {lock}, true), "
        f"set_config('statement_timeout', {statement}, true), {record_statements.BEGAN}"
    )


def _quoted(duration: str) -> str:
    return "'" + duration.replace("'", "''") + "'"


async def apply_all(
    target: Target, conn: asyncpg.Connection, migrations: list[Migration], trails: dict[str, FailedMigration]
) -> None:
    """Apply `migrations` forwards, in order (`apply`; `trails`: what earlier runs left, by ID).

    Consecutive migrations that each go as one query (`_run_in_one_query`) are sent together, up to
    BATCH_MIGRATIONS or BATCH_BYTES at once: still each in its own transaction with its own
    bookkeeping and timeouts, one after another, and an error skips the rest of what was sent (a
    simple query stops at its first error), so what applied is always a prefix. One round trip for
    the batch instead of one per migration (`_apply_batch`)."""
    index = 0
    while index < len(migrations):
        batch = _batch_from(conn, migrations, index)
        if len(batch) > 1:
            index += await _apply_batch(target, conn, batch)
        else:
            await apply(target, conn, migrations[index], False, trails.get(migrations[index].id))
            index += 1


BATCH_MIGRATIONS = 50  # each migration's line is printed when its batch returns: keep them coming
BATCH_BYTES = 1 << 20


def _batch_from(conn: asyncpg.Connection, migrations: list[Migration], start: int) -> list[Migration]:
    """The migrations from `start` on that can go together: each one query, on a direct connection
    (told durations need its LISTEN: told_durations.py) without a lease to fence."""
    if pooling.is_pooled(conn) or getattr(conn, "lease", None) is not None:
        return migrations[start : start + 1]
    batch, size = [], 0
    for migration in migrations[start : start + BATCH_MIGRATIONS]:
        body = migration.one_query(False)
        if body is None or (batch and size + len(body) > BATCH_BYTES):
            break
        batch.append(migration)
        size += len(body)
    return batch or migrations[start : start + 1]


async def _apply_batch(target: Target, conn: asyncpg.Connection, batch: list[Migration]) -> int:
    """Send `batch` as one query; return how many of it were applied (all, or those before one that
    hit a lock timeout and was then applied alone, with its retries); raise for one that failed."""
    app = target.database.app
    limits = [await _ready(target, migration, backwards=False) for migration in batch]
    await told_durations.listen(conn)
    started = time.perf_counter()
    parts = [
        _one_query(app, migration, False, started, limit, migration.one_query(False) or "")
        for migration, limit in zip(batch, limits, strict=True)
    ]
    try:
        await conn.execute(";\n".join(parts))
    except BaseException as error:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        applied = await _applied_of(target, conn, batch, error)
        await _say_applied(target, conn, batch[:applied])
        if not isinstance(error, Exception):  # interrupted: what applied is said, and the run ends
            raise
        if applied == 0 and isinstance(error, asyncpg.PostgresSyntaxError):
            # The server parses a whole query before it runs any of it, so a statement an older server
            # cannot parse (pglast reads the newest grammar) stopped all of them: nothing ran. One at
            # a time, those before it apply and it fails as itself.
            for migration in batch:
                await apply(target, conn, migration, False)
            return len(batch)
        failed, limit = batch[applied], limits[applied]
        if isinstance(error, asyncpg.LockNotAvailableError) and limit.retries > 0:
            pause = _RETRY_BACKOFF_SECONDS[0]
            say(f"{target.name}: {failed.id} hit lock_timeout on a busy table; retrying in {pause:g} s")
            await asyncio.sleep(pause)
            await apply(target, conn, failed, False, attempts_made=1)
            return applied + 1
        raise await _failed(target, conn, failed, False, error, 1, limit) from None
    await _say_applied(target, conn, batch)
    return len(batch)


async def _ready(target: Target, migration: Migration, backwards: bool) -> Limits:
    """What running `migration` needs first: its limits and, forwards, the copy of what `down`
    runs, kept with its bookkeeping so that `down` needs no file."""
    if not backwards:
        await migration.render_down_copy()
    return Limits.of(target, migration)


async def _applied_of(target: Target, conn: asyncpg.Connection, batch: list[Migration], error: BaseException) -> int:
    """How many of `batch` committed (a prefix: each one runs only once the one before committed),
    read from the bookkeeping; a UserError when the connection is gone and it cannot be read."""
    ids = [migration.id for migration in batch]
    try:
        done = await recorder.applied_among(conn, target.database.app, ids)
    except Exception:
        if not isinstance(error, Exception):
            return 0  # interrupted, and nothing more can be read: status tells
        raise UserError(
            f"{target.name}: lost the connection to the server while applying {ids[0]} .. {ids[-1]}, sent together "
            f"({failures.error_text(error)}): each commits with its bookkeeping or not at all, so `make "
            "db-migrate-status` shows which applied; run the command again when the server is back"
        ) from None
    return done


async def _say_applied(target: Target, conn: asyncpg.Connection, applied: list[Migration]) -> None:
    """The `applied` line of each, with the duration recorded (told back, else read back)."""
    app = target.database.app
    for migration in applied:
        say(f"{target.name}: applied {migration.id} ({await _recorded_duration(conn, app, migration.id)} ms)")


async def _recorded_duration(conn: asyncpg.Connection, app: str, migration_id: str) -> int | None:
    """The duration recorded for a migration sent as one query: told back on commit, else read back."""
    told = told_durations.take(conn, app, migration_id)
    return told if told is not None else await recorder.recorded_duration(conn, app, migration_id)


async def apply(
    target: Target,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    trail: FailedMigration | None = None,
    attempts_made: int = 0,
) -> None:
    """Run one migration forwards or backwards, with its bookkeeping, retrying lock timeouts
    (a transactional one only: each retry waits after its transaction was rolled back). `trail`:
    what an earlier run of this non-transactional migration left (stepwise.py); `attempts_made`:
    attempts already made (in a batch: `apply_all`)."""
    limits = await _ready(target, migration, backwards)
    retries = limits.retries if migration.transactional else 0  # a half-done one must not be blindly rerun
    started = time.perf_counter()
    for attempt in range(attempts_made, retries + 1):
        try:
            duration_ms = await _run_once(target, conn, migration, backwards, started, limits, trail)
            break
        except UserError:
            raise
        except ENDS_THE_RUN as stop:  # sys.exit() in a raw step: rolled back, and said so
            failure = RuntimeError(f"its code raised {type(stop).__name__}({stop}), which would end the run")
        except Exception as error:
            if isinstance(error, asyncpg.LockNotAvailableError) and attempt < retries:
                pause = _RETRY_BACKOFF_SECONDS[min(attempt, len(_RETRY_BACKOFF_SECONDS) - 1)]
                say(f"{target.name}: {migration.id} hit lock_timeout on a busy table; retrying in {pause:g} s")
                await asyncio.sleep(pause)
                continue
            failure = error
        raise await _failed(target, conn, migration, backwards, failure, attempt + 1, limits) from None
    say(f"{target.name}: {'reverted' if backwards else 'applied'} {migration.id} ({duration_ms} ms)")


async def _run_once(
    target: Target,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    started: float,
    limits: Limits,
    trail: FailedMigration | None,
) -> int:
    """Run `migration` once; return the duration recorded (and so the one to print)."""
    app = target.database.app
    body = migration.one_query(backwards)
    if body is not None and getattr(conn, "lease", None) is None:  # a lease is fenced first: its own round trip
        return await _run_in_one_query(app, conn, migration, backwards, started, limits, body)
    if migration.staged:  # its stages first: short transactions of their own, each fenced
        await migration.run_stages(conn, backwards, limits.timeouts, lambda: fence(conn, migration.id), limits.retries)
    elif not migration.transactional:  # one statement at a time, leaving a trail, then recorded
        return await stepwise.run(target, conn, migration, backwards, trail, limits.in_session, started)
    # A transactional migration, or the last step of a staged one: with its bookkeeping, fenced.
    async with migration.transaction(conn, limits.in_transaction):
        await fence(conn, migration.id)  # through PgBouncer: still our lease, until commit
        await (migration.finish(conn, backwards) if migration.staged else migration.run(conn, backwards))
        return await recorder.record_run(conn, app, migration, backwards, started)


async def _run_in_one_query(
    app: str,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    started: float,
    limits: Limits,
    body: str,
) -> int:
    """BEGIN, the timeouts, the migration's SQL, its bookkeeping and COMMIT as one query: one round
        trip, and still all or nothing (an error skips the rest of the query, COMMIT included, and the
        transaction is rolled back). Returns the duration recorded, told back on commit (told_durations.py)
    or else read back, so that it is the one printed."""
    told = not backwards and not pooling.is_pooled(conn)  # told back on commit: no round trip to read it
    if told:
        await told_durations.listen(conn)
    try:
        await conn.execute(_one_query(app, migration, backwards, started, limits, body, told))
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    if backwards:
        return round((time.perf_counter() - started) * 1000)
    return await _recorded_duration(conn, app, migration.id)


def _one_query(
    app: str, migration: Migration, backwards: bool, started: float, limits: Limits, body: str, told: bool = True
) -> str:
    """BEGIN, the timeouts and the moment it began (Limits.in_one_query), the migration's SQL (`body`),
    its bookkeeping (`told`: selecting what tells its duration on commit) and COMMIT, as one query's
    text."""
    if backwards:
        record = record_statements.unapplied_statement(app, migration.id)
    else:
        offset_ms = (time.perf_counter() - started) * 1000
        tell = told_durations.tell_expression(app, migration.id) if told else None
        down = migration.down_copy
        record = record_statements.applied_statement(app, migration.id, migration.file.checksum, offset_ms, down, tell)
    return f"BEGIN; {limits.in_one_query};\n{body}\n;\n{record};\nCOMMIT"


async def _failed(
    target: Target,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    error: Exception,
    attempts: int,
    limits: Limits,
) -> UserError:
    """Record a non-transactional failure (when the connection still works) and word the error."""
    resume = None
    if not migration.transactional and not migration.staged and not backwards:
        unfinished = None if failures.connection_lost(error) else await _unfinished(conn, target, migration.id)
        if unfinished is not None:
            resume = failures.Resume(
                unfinished.statements_done,
                unfinished.statements_total,
                unfinished.last_statement,
                await _left_invalid(conn, unfinished),
            )
            with contextlib.suppress(Exception):  # the migration's own error is the one to report
                await recorder.record_failure(conn, target.database.app, migration.id, failures.error_text(error))
    return failures.migration_failed(target.name, migration, backwards, error, *limits.timeouts, attempts, resume)


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


async def _unfinished(conn: asyncpg.Connection, target: Target, migration_id: str) -> FailedMigration | None:
    try:
        return (await recorder.failed(conn, target.database.app)).get(migration_id)
    except Exception:
        return None
