"""The lock trace: what each statement of a migration locks, rewrites, scans and validates, as
PostgreSQL itself reports it (pg_locks, pg_class.relfilenode, pg_stat_xact_user_tables, pg_constraint).

verify's instrument, never the executor's: `apply_traced` applies one migration forwards on a
scratch database one statement at a time inside the migration's own transaction (as `eugene
trace` does), reads the catalog after each statement in one round trip, records the migration
applied in the same transaction (recorder.py) and commits. Each statement of a non-transactional
migration runs in a transaction of its own when PostgreSQL allows that (the effect is the same as
autocommit); one PostgreSQL refuses there (CREATE INDEX CONCURRENTLY, ...), or a DO block that
commits, runs alone while a second connection samples its locks, holding a snapshot that a
CONCURRENTLY build waits for (so the build's lock is seen) until the build waits on it.

Invariant: the trace changes the database exactly as the executor would (the same statements, in
order, under the same timeouts, with the same bookkeeping row); it only looks between statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine import failures, planning, preflight, recorder
from dbmigrate.engine import statements as sql_statements
from dbmigrate.engine.files import shown_path
from dbmigrate.engine.migration import Migration
from dbmigrate.engine.runner import Limits
from dbmigrate.engine.statement_facts import facts
from dbmigrate.engine.target import Target
from dbmigrate.engine.trace_catalog import CONSTRAINT_TYPES, PG_LOCK_NAMES, SAMPLE, Snapshot, snapshot
from dbmigrate.engine.trace_model import (
    KINDS,
    LOCK_MODES,
    ConstraintEvent,
    Lock,
    MigrationTrace,
    RelationChange,
    Scan,
    StatementTrace,
)

BOOKKEEPING = frozenset({"migration", "dbmigrate_history"})  # recorder.py's tables: never traced


async def apply_traced(target: Target, migration: Migration, conn: asyncpg.Connection | None = None) -> MigrationTrace:
    """Apply `migration` forwards to `target` (a scratch database), one statement at a time,
    tracing each, and record it applied; a UserError, worded as the executor's, when it fails.
    On `conn` when given (its caller holds the migration lock), else on a locked connection of its own."""
    if conn is None:
        async with target.connected("trace") as own, planning.locked(target, own):
            return await _apply_traced(target, migration, own)
    return await _apply_traced(target, migration, conn)


async def _apply_traced(target: Target, migration: Migration, conn: asyncpg.Connection) -> MigrationTrace:
    limits = Limits.of(target, migration)
    lock_timeout, statement_timeout = limits.timeouts
    shown_file = migration.file.shown
    trace = MigrationTrace(
        target.name, migration.id, shown_file, migration.transactional, lock_timeout, statement_timeout
    )
    preflight.refuse_unsafe(target, [migration], conn)
    tracer = _Tracer(target, conn, trace, await snapshot(conn))
    # SQL runs statement by statement; Piccolo's operations send theirs through a traced connection.
    is_sql = migration.statements(False) is not None
    runner = conn if is_sql else _TracingConnection(conn, tracer, shown_file, migration.transactional)
    try:
        if migration.transactional:
            async with migration.transaction(runner, limits.in_transaction):
                tracer.last = await snapshot(conn)
                await _run(migration, runner, tracer, target.project_root)
                await _record(target, conn, migration, tracer)
            tracer.committed()
        else:
            await conn.execute(limits.in_session)
            await _run(migration, runner, tracer, target.project_root)
            await conn.execute("RESET ALL")  # as the runner does: nothing it SET outlives it
            async with conn.transaction():
                await _record(target, conn, migration, tracer)
    except UserError:
        raise
    except Exception as error:
        raise failures.migration_failed(target.name, migration, False, error, lock_timeout, statement_timeout) from None
    finally:
        await tracer.close()
    return trace


async def _record(target: Target, conn: asyncpg.Connection, migration: Migration, tracer: _Tracer) -> None:
    tracer.trace.duration_ms = round(tracer.elapsed_ms(), 1)
    await recorder.record_applied(
        conn, target.database.app, migration.id, migration.file.checksum, round(tracer.trace.duration_ms)
    )


async def _run(migration: Migration, runner, tracer: _Tracer, root: Path) -> None:
    if isinstance(runner, _TracingConnection):
        runner.armed = True
        await migration.run(runner, backwards=False)  # type: ignore[arg-type]
        return
    for source in await migration.lint_sources(runner):  # the SQL, each piece at its line in its file
        shown = shown_path(source.path, root)
        for statement in sql_statements.split(source.text, source.first_line):
            run = _execute(runner, statement.sql)
            await tracer.statement(statement.sql, shown, statement.line, migration.transactional, run)


def _execute(conn: asyncpg.Connection, sql: str, *args, method: str = "execute") -> Callable[[], Awaitable]:
    return lambda: getattr(conn, method)(sql, *args)


class _TracingConnection:
    """The migration's connection as Piccolo sees it: once armed (after the transaction's own
    prelude), every query Piccolo sends through it is traced."""

    def __init__(self, conn: asyncpg.Connection, tracer: _Tracer, file: str, in_transaction: bool) -> None:
        self._conn, self._tracer, self._file, self._in_transaction = conn, tracer, file, in_transaction
        self.armed = False

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    async def execute(self, query: str, *args, **kwargs):
        return await self._traced(query, "execute", args)

    async def fetch(self, query: str, *args, **kwargs):
        return await self._traced(query, "fetch", args)

    async def _traced(self, query: str, method: str, args: tuple):
        run = _execute(self._conn, query, *args, method=method)
        if not self.armed:
            return await run()
        return await self._tracer.statement(query, self._file, None, self._in_transaction, run)


class _Tracer:
    def __init__(self, target: Target, conn: asyncpg.Connection, trace: MigrationTrace, before: Snapshot) -> None:
        self.target, self.conn, self.trace = target, conn, trace
        self.existed = set(before.relations)
        self.names = dict(before.relations)  # every relation seen, kept after it is dropped
        self.last = before
        self.started = time.perf_counter()
        self._watcher: asyncpg.Connection | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    async def statement(self, sql: str, file: str, line: int | None, in_transaction: bool, run):
        """Run one statement (`run()`) where it belongs, and trace it."""
        started = self.elapsed_ms()
        if in_transaction:
            result = await run()
            ended = self.elapsed_ms()
            after = await snapshot(self.conn)
            self._add(sql, file, line, "migration", started, ended, self.last, after, None)
            self.last = after
            return result
        if not _outside_transaction(sql):
            await self.conn.execute("BEGIN")
            try:
                before = await snapshot(self.conn)
                result = await run()
                ended = self.elapsed_ms()
                after = await snapshot(self.conn)
                await self.conn.execute("COMMIT")
            except asyncpg.InvalidTransactionTerminationError:  # it commits itself: run it alone
                await self.conn.execute("ROLLBACK")
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.conn.execute("ROLLBACK")
                raise
            else:
                self._add(sql, file, line, "own", started, ended, before, after, None, held_until=self.elapsed_ms())
                return result
        before = await snapshot(self.conn)
        result, sampled = await self._sampled(run)
        ended = self.elapsed_ms()
        self._add(sql, file, line, "none", started, ended, before, await snapshot(self.conn), sampled)
        return result

    def committed(self) -> None:
        """The migration's transaction committed: every lock it took is released now."""
        now = self.elapsed_ms()
        for statement in self.trace.statements:
            if statement.transaction == "migration":
                statement.locks = [
                    Lock(lock.mode, lock.relation, lock.kind, lock.existed, round(now - statement.started_ms, 1))
                    for lock in statement.locks
                ]

    async def close(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.close(timeout=5)

    async def _sampled(self, run) -> tuple[object, set[tuple[int, str]]]:
        """Run a statement alone while another connection samples its locks; a snapshot held by
        the sampler makes a CONCURRENTLY build wait (holding its lock) until the sampler has seen
        a lock of it, so that lock is seen however quick the build."""
        if self._watcher is None:
            self._watcher = await self.target.connect("trace sampler")
        watcher, pid, seen = self._watcher, self.conn.get_server_pid(), set()
        await watcher.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        holding = True
        task = asyncio.ensure_future(run())
        try:
            while not task.done():
                locks, waits_on_us = await watcher.fetchrow(SAMPLE, pid, watcher.get_server_pid())
                for lock in locks:
                    oid, mode = lock.split(" ", 1)
                    seen.add((int(oid), PG_LOCK_NAMES.get(mode, mode)))
                if holding and (waits_on_us or locks):  # seen (or waiting on us): let it go on at once
                    await watcher.execute("COMMIT")
                    holding = False
            return await task, seen
        finally:
            if holding:
                with contextlib.suppress(Exception):
                    await watcher.execute("COMMIT")
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task

    def _add(self, sql, file, line, where, started, ended, before, after, sampled, held_until=None) -> None:
        self.names.update(after.relations)
        fact = facts(sql)
        taken = sampled if sampled is not None else after.locks - before.locks
        rewrites = [
            self._change(oid)
            for oid, (_, _, node, _) in before.relations.items()
            if oid in after.relations and node and after.relations[oid][2] != node and self._traced(oid)
        ]
        # An index PostgreSQL re-creates over its old file (a type change that needs no rebuild) is no new index.
        dropped_files = {node for oid, (_, _, node, _) in before.relations.items() if oid not in after.relations}
        created = [
            self._change(oid)
            for oid, (_, _, node, _) in after.relations.items()
            if oid not in before.relations and node not in dropped_files and self._traced(oid)
        ]
        held = round((held_until if held_until is not None else ended) - started, 1)
        statement = StatementTrace(
            number=len(self.trace.statements) + 1,
            file=file,
            line=line,
            sql=sql.strip(),
            command=fact.command if fact else sql.strip().split(" ", 1)[0].upper(),
            table=fact.table.removeprefix("public.") if fact and fact.table else None,
            actions=list(fact.actions) if fact else [],
            transaction=where,
            duration_ms=round(ended - started, 1),
            lock_timeout=after.lock_timeout,
            locks=sorted(
                (self._lock(oid, mode, held) for oid, mode in taken if self._traced(oid)),
                key=lambda lock: (lock.relation, LOCK_MODES.index(lock.mode) if lock.mode in LOCK_MODES else 0),
            ),
            rewrites=rewrites,
            created=created,
            constraints=self._constraints(before, after),
            started_ms=round(started, 1),
        )
        if sampled is None:  # a sampled statement's scan counters may have been flushed meanwhile
            statement.scans = self._scans(before, after, statement, fact)
        statement.writes = [self._name(oid) for oid in self._write_targets(fact)]
        self.trace.statements.append(statement)

    def _traced(self, oid: int) -> bool:
        known = self.names.get(oid)
        if known is None:
            return False  # a transient relation (a rewrite's new heap), gone already
        table = self.names.get(known[3]) if known[3] else None
        return known[0] not in BOOKKEEPING and (table is None or table[0] not in BOOKKEEPING)

    def _name(self, oid: int) -> str:
        return self.names[oid][0]

    def _change(self, oid: int) -> RelationChange:
        name, kind, _, table = self.names[oid]
        table_name = self.names[table][0] if table in self.names else None
        return RelationChange(name, KINDS.get(kind, kind), oid in self.existed, table_name)

    def _lock(self, oid: int, mode: str, held_ms: float) -> Lock:
        name, kind, _, _ = self.names[oid]
        return Lock(mode, name, KINDS.get(kind, kind), oid in self.existed, held_ms)

    def _scans(self, before: Snapshot, after: Snapshot, statement: StatementTrace, fact) -> list[Scan]:
        rewritten = {change.relation for change in statement.rewrites}
        indexed = {change.table for change in statement.created if change.kind in ("index", "partitioned index")}
        scans = []
        for oid, count in after.scans.items():
            if count <= before.scans.get(oid, 0) or not self._traced(oid):
                continue
            name = self._name(oid)
            if name in rewritten:
                purpose = "rewrite"
            elif (
                name in indexed or statement.command.startswith(("CREATE", "REINDEX")) and "INDEX" in statement.command
            ):
                purpose = "index build"
            elif fact is not None and fact.command == "ALTER TABLE":
                purpose = "validate"
            else:
                purpose = "query"
            scans.append(Scan(name, oid in self.existed, purpose))
        return scans

    def _constraints(self, before: Snapshot, after: Snapshot) -> list[ConstraintEvent]:
        events = []
        for oid, (name, kind, table, valid) in after.constraints.items():
            earlier = before.constraints.get(oid)
            if earlier is not None and (earlier[3] or not valid):
                continue
            if table not in self.names or not self._traced(table):
                continue
            event = "added" if earlier is None else "validated"
            events.append(
                ConstraintEvent(
                    name, CONSTRAINT_TYPES.get(kind, kind), self._name(table), table in self.existed, event, valid
                )
            )
        return events

    def _write_targets(self, fact) -> list[int]:
        if fact is None or not fact.writes:
            return []
        by_name = {name: oid for oid, (name, *_rest) in self.names.items()}
        written = [by_name.get(name.removeprefix("public.")) for name in fact.writes]
        return [oid for oid in written if oid is not None and oid in self.existed]


def _outside_transaction(sql: str) -> bool:
    """Whether PostgreSQL refuses `sql` inside a transaction block (CREATE INDEX CONCURRENTLY, ...)."""
    try:
        found = sql_statements.split(sql)
    except sql_statements.SQLSyntaxError:
        return False
    return any(statement.outside_transaction for statement in found)
