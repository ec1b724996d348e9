"""A non-transactional migration, run one statement at a time (CREATE INDEX CONCURRENTLY and the
like cannot run in a transaction), and made to recover from a failed or interrupted earlier run.

  * the trail (recorder.py): a `running` row before the first statement, then, after each
    statement, its number, its line and the digest of its text, riding on one UPDATE each; once
    all ran, the migration's applied row, in a transaction of its own;
  * resuming: a rerun of a migration whose trail says statements 1..k finished starts at k+1,
    without resetting the trail, when statements 1..k are unchanged (their digests match); when
    one of them changed, it refuses before running anything (the database holds what the old
    text did). Session settings among the skipped statements (SET search_path) run again;
  * INVALID leftovers (leftovers.py): before each concurrent index build, the INVALID index an
    earlier failed or killed build of that same index left is dropped, by name, and said so.

Invariant: a statement that finished is never run twice, unless it only sets a session setting.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import leftovers, record_statements, recorder
from dbmigrate.engine.migration import Migration, StatementHooks
from dbmigrate.engine.target import Target

if TYPE_CHECKING:
    from dbmigrate.engine.recorder import FailedMigration
    from dbmigrate.engine.statements import Statement


async def run(
    target: Target,
    conn: asyncpg.Connection,
    migration: Migration,
    backwards: bool,
    trail: FailedMigration | None,
    timeouts: str,
    started: float,
) -> int:
    """Run `migration` statement by statement under `timeouts` (their SET for the session), then
    record it (record_statements.run_statement: its duration since `started`); return the duration recorded."""
    await conn.execute(timeouts)
    await _statements(target, conn, migration, backwards, trail)
    duration_ms = round((time.perf_counter() - started) * 1000)
    record = record_statements.run_statement(target.database.app, migration, backwards, duration_ms)
    try:  # one round trip: its timeouts and whatever it SET (a search_path) reset, and its bookkeeping
        await conn.execute(f"BEGIN; RESET ALL; {record}; COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    return duration_ms


async def _statements(
    target: Target, conn: asyncpg.Connection, migration: Migration, backwards: bool, trail: FailedMigration | None
) -> None:
    """Its statements, one at a time; forwards, after what `trail` says finished, with the trail kept."""
    app = target.database.app
    statements = migration.statements(backwards)

    async def before(count: int, statement: Statement) -> None:
        if statement.index_build is None:
            return
        for index in await leftovers.drop_leftovers(conn, statement.index_build):
            say(
                f"{target.name}: {migration.id}: dropped INVALID index {index.qualified} (DROP INDEX CONCURRENTLY), "
                f"left by an earlier failed or interrupted build; running statement {count} again"
            )

    if backwards:
        await migration.run(conn, True, StatementHooks(before=before))
        return
    first = resume_point(target.name, migration, statements, trail)
    total = len(statements) if statements is not None else None
    if first > 1:
        say(
            f"{target.name}: {migration.id}: statement(s) 1..{first - 1} of {total} finished in an earlier run and "
            f"are unchanged; resuming at statement {first}"
        )
    building = _building(statements, first)
    await recorder.record_started(conn, app, migration.id, migration.file.checksum, total, first > 1, building)

    async def done(count: int, statement: Statement) -> None:
        await recorder.record_progress(
            conn,
            app,
            migration.id,
            count,
            f"line {statement.line}: {statement.summary}",
            statement.digest,
            _building(statements, count + 1),
        )

    await migration.run(conn, False, StatementHooks(first, before, done))


def resume_point(
    database: str, migration: Migration, statements: list[Statement] | None, trail: FailedMigration | None
) -> int:
    """The statement to start at (1-based): after those `trail` says finished, while unchanged."""
    done = trail.statements_done if trail is not None else None
    if not done or statements is None:
        return 1
    start_over = (
        f"undo what they did by hand and run `make db-migrate-repair DB={database}` to run {migration.id} from its "
        "first statement"
    )
    digests = trail.finished_digests or ()
    if len(digests) != done:
        raise UserError(
            f"{database}: {migration.id} was not run: {done} of its statements finished in an earlier run, recorded "
            f"without a digest of their text (by an older dbmigrate), so whether they changed is unknown: {start_over}"
        )
    if len(statements) < done:
        raise UserError(
            f"{database}: {migration.id} was not run: {done} of its statements finished in an earlier run, but the "
            f"file now has {len(statements)}: restore the statements that finished, or {start_over}"
        )
    for number, (statement, digest) in enumerate(zip(statements, digests, strict=False), start=1):
        if statement.digest != digest:
            raise UserError(
                f"{database}: {migration.id} was not run: statement {number} (line {statement.line}: "
                f"{statement.summary}) finished in an earlier run but its text has changed since, and the database "
                f"holds what the earlier text did. Restore statements 1..{done} as they ran (change only the ones "
                f"after them), or {start_over}"
            )
    return done + 1


def _building(statements: list[Statement] | None, number: int) -> str | None:
    """The trail's record of the concurrent index build statement `number` runs, if any."""
    if statements is None or number > len(statements):
        return None
    build = statements[number - 1].index_build
    return build.record() if build is not None else None
