"""StagedMigration: a migration that runs as stages, each in short transactions of its own, and
resumes where a killed run stopped.

A long change to a live table cannot be one transaction: a backfill of millions of rows would hold
its row locks to the end, and `ADD CONSTRAINT ... NOT VALID` followed by `VALIDATE` in one
transaction keeps the first statement's lock through the whole scan. A StagedMigration is an
SQLMigration whose steps are stages, in order:

  * `sql(forwards, backwards)`: one transaction (under the migration's lock_timeout, retried);
  * `batched_update(table=..., set=..., where=..., backwards=...)`: the batches of batches.py,
    one short transaction each, throttled to a target batch time.

Its Piccolo operations, as for any SQLMigration, only describe the change to Piccolo's schema
snapshot (the expand/contract helpers of dbmigrate.expand add them). Each stage commits together
with its progress row (progress.py), so a rerun skips the stages that committed and resumes a
batches stage at its cursor. The migration is recorded applied (and its row 'done') in one last
transaction; rolling it back runs every stage's backwards SQL, last stage first, in one
transaction. Every transaction is self-contained (SET LOCAL, the lease's fence), so a staged
migration runs through PgBouncer in transaction mode like a transactional one. Its down copy (kept
in the bookkeeping so `down` needs no file) is that one transaction's SQL; a revert from it also
forgets the progress row (stored_down.py). `StagedSteps` is
the kind as the executor sees it (migration.py): `staged` is true, and it runs `run_stages` then
`finish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine import batches, progress
from dbmigrate.engine import statements as sql_statements
from dbmigrate.engine.batches import BatchStage
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import (
    DownCopy,
    LintSource,
    Migration,
    MigrationOptions,
    StatementHooks,
    plain_transaction,
)
from dbmigrate.engine.sql_migration import NOTHING_TO_UNDO, SQLMigration, SQLStep, SQLSteps, SQLText

_DURATION = re.compile(r"^\s*(?P<number>\d+(\.\d+)?)\s*(?P<unit>ms|s)?\s*$")
_RETRY_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


def seconds(value: str | float, what: str) -> float:
    """`value` ("50ms", "2s", 0.5) in seconds, or ValueError naming `what`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{what}={value!r} is not a duration: write e.g. '50ms' or '2s'")
        number = float(match["number"]) / (1000 if match["unit"] == "ms" else 1)
    if number <= 0:
        raise ValueError(f"{what}={value!r} must be more than zero")
    return number


@dataclass
class StagedMigration(SQLMigration):
    stages: list[SQLStep | BatchStage] = field(default_factory=list)
    # squawk rules its helpers' SQL breaks on purpose, with why (dbmigrate.expand): merged into the
    # file's own SQUAWK_EXEMPT, which wins.
    squawk_exempt: dict[str, str] = field(default_factory=dict)

    def sql(self, forwards: str, backwards: str | None) -> StagedMigration:
        """Add a stage that runs `forwards` in a transaction of its own."""
        super().sql(forwards, backwards)
        self.stages.append(self.steps[-1])
        return self

    def sql_files(self, migration_file: str | Path) -> StagedMigration:
        super().sql_files(migration_file)
        self.stages.append(self.steps[-1])
        return self

    def batched_update(
        self,
        *,
        table: str,
        set: str,
        backwards: str | None,
        where: str | None = None,
        key: str | None = None,
        batch_time: str | float = "50ms",
        lock_timeout: str = "50ms",
    ) -> StagedMigration:
        """Add a stage that runs `UPDATE table SET <set> [WHERE <where>]` in batches of keys (the
        primary key unless `key` names another unique indexed column), each batch its own
        transaction of about `batch_time`. `backwards`: SQL that undoes it, NOTHING_TO_UNDO, or
        None when it cannot be undone."""
        stage = BatchStage(
            table=table,
            set=set,
            where=where,
            key=key,
            batch_time=seconds(batch_time, "batch_time"),
            lock_timeout=f"{seconds(lock_timeout, 'lock_timeout') * 1000:g}ms",
            backwards=backwards,
        )
        self.stages.append(stage)
        return self

    async def run(self, backwards: bool = False) -> None:
        """Piccolo's own entry point (`piccolo migrations forwards --preview`): the stages, as text."""
        if self.preview:
            print(StagedSteps.describe(self, backwards))
            return
        raise RuntimeError(f"{self.migration_id} is a staged migration: apply it with `make db-migrate`")


class StagedSteps(Migration):
    """A StagedMigration as the executor sees it: stages of short transactions, resumable."""

    staged = True

    def __init__(self, file: MigrationFile, options: MigrationOptions, manager: StagedMigration) -> None:
        super().__init__(file, replace(options, squawk_exempt={**manager.squawk_exempt, **options.squawk_exempt}))
        self.manager = manager
        self._sql = SQLSteps(file, options, manager)  # the SQL stages: parsed, checked and linted as one

    @property
    def transactional(self) -> bool:
        return False  # its stages commit one by one (each SQL stage is checked as transactional SQL)

    def statements(self, backwards: bool = False) -> list[sql_statements.Statement]:
        return self._sql.statements(backwards)

    @property
    def irreversible_reason(self) -> str | None:
        if any(isinstance(s, BatchStage) and s.backwards is None for s in self.manager.stages):
            return "a batched update of it has no backwards SQL (backwards=None)"
        return self._sql.irreversible_reason

    def problems(self) -> list[str]:
        found = self._sql.problems()
        if not self.manager.wrap_in_transaction:
            found.append(
                "a StagedMigration runs each stage in a transaction of its own: drop wrap_in_transaction=False "
                "(CREATE INDEX CONCURRENTLY and the like need a non-transactional migration of their own)"
            )
        for number, stage in enumerate(self.manager.stages, start=1):
            if isinstance(stage, BatchStage):
                found += _batch_problems(stage, number)
        if not self.manager.stages:
            found.append("it has no stages: add sql(...) or batched_update(...) steps")
        return found

    def transaction(self, conn: asyncpg.Connection, prelude: str) -> contextlib.AbstractAsyncContextManager:
        return plain_transaction(conn, prelude)

    async def run(self, conn: asyncpg.Connection, backwards: bool, hooks: StatementHooks | None = None) -> None:
        raise RuntimeError("a staged migration runs through run_stages and finish (runner.py)")

    async def run_stages(
        self,
        conn: asyncpg.Connection,
        backwards: bool,
        timeouts: tuple[str, str],
        fence: Callable[[], Awaitable[None]],
        retries: int,
    ) -> None:
        """Run the stages not committed yet, each in transactions of its own (forwards only: going
        backwards is all in `finish`)."""
        if backwards:
            return
        app, migration_id, total = self.file.app, self.id, len(self.manager.stages)
        await progress.ensure_table(conn)
        row = (await progress.read(conn, app, migration_id)).get(migration_id)
        self._refuse_to_resume(row)
        lock_timeout, statement_timeout = (_quoted(value) for value in timeouts)
        prelude = f"SET LOCAL lock_timeout = '{lock_timeout}'; SET LOCAL statement_timeout = '{statement_timeout}'"
        for index in range(row.stage if row else 0, total):
            stage = self.manager.stages[index]
            if isinstance(stage, BatchStage):
                if row is None or row.batch_stage != index:
                    rows = await batches.rows_to_do(conn, stage)
                    async with plain_transaction(conn, prelude):
                        await fence()
                        await progress.batches_started(conn, app, migration_id, self.file.checksum, index, total, rows)
                    row = (await progress.read(conn, app, migration_id))[migration_id]
                job = batches.Job(conn, stage, app, migration_id, index + 1, fence)
                await batches.run(job, row)
            else:
                await self._sql_stage(conn, stage, index, timeouts, fence, retries)
            row = (await progress.read(conn, app, migration_id))[migration_id]

    async def finish(self, conn: asyncpg.Connection, backwards: bool) -> None:
        """In the transaction that records it: forwards, its progress row 'done'; backwards, every
        stage's backwards SQL, last stage first, and its progress row gone."""
        if not backwards:
            await progress.finished(conn, self.file.app, self.id)
            return
        for stage in reversed(self.manager.stages):
            text = stage.backwards if isinstance(stage, BatchStage) else stage.backwards.text
            if text and sql_statements.split(text, 1):
                await conn.execute(text)
        await progress.forget(conn, self.file.app, self.id)

    async def render_down_copy(self) -> DownCopy | None:
        """What `finish` runs backwards: every stage's backwards SQL, last stage first, in one transaction."""
        self.down_copy = None
        if self.reversible and not self.problems():
            texts = [
                s.backwards if isinstance(s, BatchStage) else s.backwards.text for s in reversed(self.manager.stages)
            ]
            found = [statement for text in texts if text for statement in sql_statements.split(text, 1)]
            sql = "".join(f"{s.sql};\n\n" for s in found).strip() + "\n" if found else NOTHING_TO_UNDO
            self.down_copy = DownCopy(sql, transactional=True)
        return self.down_copy

    async def _sql_stage(self, conn, stage: SQLStep, index: int, timeouts: tuple[str, str], fence, retries: int):
        """One transaction: the progress first, then the stage's SQL, so its locks are held for as
        short a time as can be; an attempt that waits past its lock_timeout is rolled back and
        retried after a pause (outside any transaction), with a longer timeout each time."""
        attempts = escalating_lock_timeouts(timeouts[0], retries)
        for attempt, lock_timeout in enumerate(attempts):
            prelude = f"SET LOCAL lock_timeout = '{_quoted(lock_timeout)}'; "
            prelude += f"SET LOCAL statement_timeout = '{_quoted(timeouts[1])}'"
            try:
                async with plain_transaction(conn, prelude):
                    await fence()
                    await progress.stage_done(
                        conn, self.file.app, self.id, self.file.checksum, index + 1, len(self.manager.stages)
                    )
                    if sql_statements.split(stage.forwards.text, 1):
                        await conn.execute(stage.forwards.text)
                return
            except asyncpg.LockNotAvailableError:
                if attempt == len(attempts) - 1:
                    raise
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))

    def _refuse_to_resume(self, row: progress.Progress | None) -> None:
        if row is None:
            return
        if row.paused:
            raise batches.paused(self.file.app, self.id, row.paused_by, row.rows_done, row.rows_total)
        if row.checksum not in (None, self.file.checksum) and row.stage > 0:
            raise UserError(
                f"{self.file.app}: {self.id} changed since its run started ({row.stage} of {row.stages} stage(s) "
                f"done): restore the file as it was, or undo what it did by hand and DELETE its row from "
                f"{progress.TABLE} to start it over"
            )

    async def preview(self, conn: asyncpg.Connection, backwards: bool) -> str:
        return self.describe(self.manager, backwards)

    @staticmethod
    def describe(manager: StagedMigration, backwards: bool) -> str:
        if backwards:
            texts = [s.backwards if isinstance(s, BatchStage) else s.backwards.text for s in reversed(manager.stages)]
            return "-- in one transaction:\n" + "\n".join(t.strip() for t in texts if t and t.strip()) + "\n"
        parts = []
        for number, stage in enumerate(manager.stages, start=1):
            head = f"-- stage {number} of {len(manager.stages)}"
            body = stage.preview() if isinstance(stage, BatchStage) else f"-- one transaction:\n{stage.forwards.text}"
            parts.append(f"{head}\n{body.strip()}")
        return "\n\n".join(parts) + "\n"

    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        return await self._sql.lint_sources(conn)  # batched updates are the safe form of a big UPDATE


def _batch_problems(stage: BatchStage, number: int) -> list[str]:
    """A batched update that would not parse, found before anything runs."""
    if not stage.table.strip() or not stage.set.strip():
        return [f"stage {number}: batched_update needs a table and a SET clause"]
    try:
        sql_statements.split(batches.batch_statement(stage, stage.key or "id", "text", first=False), 1)
        if stage.backwards:
            sql_statements.split(stage.backwards, 1)
    except sql_statements.SQLSyntaxError as error:
        return [f"stage {number}: the batched update of {stage.table} does not parse: {error}"]
    return []


FIRST_LOCK_TIMEOUT_MS = 50  # GitLab's lock retries start at 100 ms; a queued reader waits at most this long
_UNITS_MS = {"us": 0.001, "ms": 1.0, "": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_POSTGRES_DURATION = re.compile(r"^\s*(?P<number>\d+(\.\d+)?)\s*(?P<unit>us|ms|s|min|h|d)?\s*$")


def escalating_lock_timeouts(configured: str, retries: int) -> list[str]:
    """The lock_timeout of each attempt of an SQL stage: from 50 ms, doubling, up to `configured`
    (the migration's or ORION_LOCK_TIMEOUT), then `configured` for `retries` more attempts. While a
    stage waits for its lock every query on the table queues behind it, so the first waits are
    short; the later, longer ones let it through a busy table (autovacuum gives way after
    deadlock_timeout, 1 s)."""
    match = _POSTGRES_DURATION.match(configured)
    cap = float(match["number"]) * _UNITS_MS[match["unit"] or ""] if match else 0.0
    steps, timeout = [], float(FIRST_LOCK_TIMEOUT_MS)
    while cap == 0 or timeout < cap:  # 0: no limit, after the escalation
        steps.append(f"{timeout:g}ms")
        timeout *= 2
        if cap == 0 and timeout > 5_000:
            break
    return steps + [configured] * (retries + 1)


def _quoted(value: str) -> str:
    return value.replace("'", "''")


__all__ = ["BatchStage", "SQLText", "StagedMigration", "StagedSteps", "seconds"]
