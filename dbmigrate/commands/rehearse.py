"""db-rehearse: the pending migrations applied to a scratch copy full of rows while a workload runs,
each one's effect on that workload measured, and a failure for one that blocks it past MAX_BLOCK.

1. A scratch database on the same server, at the base: the migrations the database has applied
   (or BASE=ref's migrations), filled with ROWS synthetic rows per table (fill.py); or a copy of a
   database the user names (FROM_DB=name: CREATE DATABASE ... TEMPLATE), rows and all.
2. A workload (workload.py): CLIENTS connections reading and writing rows by primary key on every
   table the pending migrations name.
3. The pending migrations, applied one by one with the executor, as `make db-migrate` would; for
   each: its duration, the longest time a workload query took while it ran (the workload's own
   timings) and the longest lock wait sampled from pg_stat_activity, p50/p99 before and during,
   and the sizes of the tables it names before and after.
Invariant: everything the rehearsal creates (the scratch database, its connections) is gone when
it ends, however it ends (an error, Ctrl-C); the database DB names is only read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from dbmigrate.commands import fill, rehearse_report
from dbmigrate.commands.base_branch import paths_at
from dbmigrate.commands.common import guard
from dbmigrate.commands.scratch import scratch_database
from dbmigrate.commands.workload import Workload, prepare_tables
from dbmigrate.core.config import Database, Settings, duration_milliseconds
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import quiet, reporting_to, say
from dbmigrate.core.urls import database_name
from dbmigrate.engine import executor, planning, preflight, runner
from dbmigrate.engine.migration import Migration
from dbmigrate.engine.state import forwards_plan
from dbmigrate.engine.statement_facts import relations_of
from dbmigrate.engine.target import Target
from dbmigrate.server import connection

DEFAULT_ROWS = 1_000_000
SETTLE_SECONDS = 0.5  # the workload alone before each migration: the "before" of its latencies


@dataclass(frozen=True)
class RehearseOptions:
    rows: str = str(DEFAULT_ROWS)  # ROWS=1000000, or ROWS=1000000,audit_log=5000000,tenants=100
    clients: int = 8
    max_block: str = "1s"
    base: str | None = None
    from_db: str | None = None
    summary: Path | None = None
    append_summary: bool = False
    confirm: str | None = None
    json: bool = False  # FORMAT=json: the results on stdout (rehearsal.schema.json), progress on stderr


@dataclass
class Result:
    migration: str
    duration_ms: float = 0.0
    longest_ms: float | None = None  # the longest workload query that ran while it did
    sampled_ms: float = 0.0  # the longest lock wait pg_stat_activity showed meanwhile
    before: tuple[float | None, float | None] = (None, None)  # p50, p99 (ms)
    during: tuple[float | None, float | None] = (None, None)
    queries: int = 0
    errors: int = 0
    sizes_before: dict[str, int] = field(default_factory=dict)
    sizes_after: dict[str, int] = field(default_factory=dict)
    failed: str | None = None
    workload: bool = False  # a workload ran (a migration too quick for any query to overlap it blocked none)

    @property
    def blocked_ms(self) -> float:
        return max(self.longest_ms or 0.0, self.sampled_ms)


def rows_per_table(text: str) -> tuple[int, dict[str, int]]:
    """ROWS=1000000 or ROWS=1000000,users=50000,tenants=100: (default, per table)."""
    default, per_table = DEFAULT_ROWS, {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, equals, count = part.rpartition("=")
        if not count.replace("_", "").isdigit() or (equals and not re.fullmatch(r"[\w.]+", name)):
            raise UsageError(f"ROWS={text!r} is not understood: write ROWS=1000000 or ROWS=1000000,users=50000")
        if equals:
            per_table[name.removeprefix("public.")] = int(count.replace("_", ""))
        else:
            default = int(count.replace("_", ""))
    return default, per_table


async def rehearse(settings: Settings, database: Database, options: RehearseOptions) -> None:
    """Rehearse `database`'s pending migrations (see the module docstring); UserError when one
    fails or blocks the workload longer than MAX_BLOCK."""
    default_rows, per_table = rows_per_table(options.rows)
    max_block_ms = duration_milliseconds(options.max_block, "MAX_BLOCK")
    if options.clients < 1:
        raise UsageError(f"CLIENTS={options.clients} is not a number of connections: write e.g. CLIENTS=8")
    if options.base and options.from_db:
        raise UsageError("BASE and FROM_DB both name the starting point: give one of them")
    guard(settings, "rehearse", [database], options.confirm)
    with reporting_to(_to_stderr) if options.json else contextlib.nullcontext():
        results, loads = await _rehearse(settings, database, options, default_rows, per_table)
        lines = rehearse_report.text(database.name, results, default_rows, per_table, options, max_block_ms, loads)
        for line in lines if results else []:
            say(line)
    if options.json:
        print(json.dumps(rehearse_report.document(database.name, results, options, max_block_ms), indent=2))
    if options.summary is not None and results:
        rehearse_report.write_summary(options.summary, database.name, results, max_block_ms, options.append_summary)
    failures = rehearse_report.failures(database.name, results, max_block_ms)
    if failures:
        for failure in failures[:-1]:
            print(f"error: {failure}", flush=True, file=sys.stderr)
        raise UserError(failures[-1])


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _rehearse(settings: Settings, database: Database, options: RehearseOptions, default_rows, per_table):
    await connection.prepare(settings, [database])
    target = Target.resolve(settings, database)
    base_ids = None if options.from_db else await _base_ids(target, options.base)
    async with _scratch(target, options.from_db) as scratch:
        say(f"{target.name}: rehearsing on scratch database {database_name(scratch.url)}")
        pending = await _at_base(scratch, base_ids)
        if not pending:
            say(f"{target.name}: nothing pending to rehearse (the base has every migration)")
            return [], []
        async with scratch.connected("rehearse") as conn:
            existing = {r[0] for r in await conn.fetch(_TABLE_NAMES)}
            touched = _touched(pending, existing)
            if not options.from_db:
                await _fill(scratch, conn, lambda table: per_table.get(table, default_rows))
            loads, notes = await prepare_tables(conn, sorted(touched))
        for note in notes:
            say(f"{target.name}: {note}")
        return await _run(scratch, pending, loads, options.clients, touched), loads


_TABLE_NAMES = """
SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
"""


async def _base_ids(target: Target, base: str | None) -> list[str]:
    """The migrations the scratch database starts with: BASE's files, else those `target` applied."""
    if base:
        at_base = paths_at(target, base)
        ids = [m.id for m in target.files if m.path in at_base]
        later = [m.id for m in target.files if m.path not in at_base and ids and m.id < ids[-1]]
        if later:
            raise UserError(
                f"{later[0]} is not on {base} but sorts before {ids[-1]}, which is: renumber it after "
                "(db-verify's immutability check says the same)"
            )
        return ids
    async with target.connected("rehearse base") as conn:
        state = await planning.read_state(target, conn)
    return [m.id for m in state.files if m.id in state.applied]


@contextlib.asynccontextmanager
async def _scratch(target: Target, from_db: str | None):
    """The scratch database: empty, or a copy of FROM_DB; dropped afterwards, whatever happens."""
    try:
        async with scratch_database(target, "rehearse", template=from_db) as scratch:
            yield scratch
    except asyncpg.InvalidCatalogNameError:
        raise UserError(
            f"FROM_DB={from_db!r} is not a database on {target.name}'s server: name one that is there"
        ) from None
    except asyncpg.ObjectInUseError:
        raise UserError(
            f"FROM_DB={from_db!r} is in use: PostgreSQL copies a database (CREATE DATABASE ... TEMPLATE) only "
            "while nobody is connected to it; stop its sessions, or restore a dump into a database of its own"
        ) from None


async def _at_base(scratch: Target, base_ids: list[str] | None) -> list[Migration]:
    """Migrate the scratch database to the base (unless it is a copy); the pending migrations, loaded."""
    if base_ids:
        say(f"{scratch.name}: base: {len(base_ids)} migration(s), up to {base_ids[-1]}, on a scratch database")
        with quiet():
            await executor.migrate(scratch, to=base_ids[-1], allow_out_of_order=True)
    async with scratch.connected("rehearse") as conn:
        state = await planning.read_state(scratch, conn)
    plan = forwards_plan(state, allow_out_of_order=True)
    migrations = [await preflight.load(m) for m in plan]
    return preflight.refuse_unsafe(scratch, migrations)


def _touched(pending: list[Migration], existing: set[str]) -> set[str]:
    """The tables that exist at the base and that a pending migration names (all of them, when a
    migration's SQL is only known as it runs: Piccolo operations)."""
    named: set[str] = set()
    for migration in pending:
        statements = migration.statements(False)
        if statements is None:
            return set(existing)
        named |= {name.removeprefix("public.") for name in relations_of([s.sql for s in statements])}
    return named & existing


async def _fill(scratch: Target, conn: asyncpg.Connection, rows_for) -> None:
    last = [0.0]
    started = time.monotonic()

    def progress(written: dict[str, int], planned: dict[str, int]) -> None:
        now = time.monotonic()
        done, total = sum(written.values()), sum(planned.values())
        if now - last[0] >= 1.0 or done == total:
            last[0] = now
            rate = done / max(now - started, 1e-9)
            say(f"{scratch.name}: filling {len(planned)} table(s): {done:,} of {total:,} rows ({rate:,.0f} rows/s)")

    result = await fill.fill_database(
        conn, rows_for, connect=lambda: scratch.connect("rehearse fill"), progress=progress
    )
    say(
        f"{scratch.name}: filled {len(result.rows)} table(s) with {result.total:,} rows in {result.seconds:.1f} s "
        f"({result.total / max(result.seconds, 1e-9):,.0f} rows/s)"
    )


async def _run(scratch: Target, pending: list[Migration], loads, clients: int, touched: set[str]) -> list[Result]:
    """Apply the pending migrations one by one under the workload; what each did to it."""
    workload = Workload(scratch, loads, clients) if loads else None
    results: list[Result] = []
    if workload is not None:
        await workload.start()
        say(f"{scratch.name}: workload: {clients} client(s) on {', '.join(load.shown for load in loads)}")
    try:
        async with scratch.connected("rehearse migrate") as conn, planning.locked(scratch, conn):
            for migration in pending:
                result = Result(migration.id)
                results.append(result)
                tables = _named(migration, touched)
                await asyncio.sleep(SETTLE_SECONDS if workload else 0)
                result.sizes_before = await _sizes(conn, tables)
                started = time.monotonic()
                try:
                    await runner.apply(scratch, conn, migration, backwards=False)
                except UserError as error:
                    result.failed = str(error)
                ended = time.monotonic()
                result.duration_ms = (ended - started) * 1000
                result.sizes_after = await _sizes(conn, tables)
                if workload is not None:
                    await asyncio.sleep(0.2)  # the queries it held up finish
                    await _measure(workload, result, started, ended)
                    say(rehearse_report.progress_line(scratch.name, result))
                if result.failed:
                    break
    finally:
        if workload is not None:
            await workload.stop()
    return results


async def _measure(workload: Workload, result: Result, started: float, ended: float) -> None:
    before = await workload.window(started - SETTLE_SECONDS, started, overlapping=False)
    during = await workload.window(started, ended)
    result.before = (before.p50_ms, before.p99_ms)
    result.during = (during.p50_ms, during.p99_ms)
    result.longest_ms = during.longest_ms
    result.queries, result.errors = during.queries, during.errors
    result.sampled_ms = await workload.longest_sampled_wait_ms(started, ended)
    result.workload = True


def _named(migration: Migration, touched: set[str]) -> list[str]:
    statements = migration.statements(False)
    if statements is None:
        return sorted(touched)
    names = {n.removeprefix("public.") for n in relations_of([s.sql for s in statements])}
    return sorted(names & touched)


async def _sizes(conn: asyncpg.Connection, tables: list[str]) -> dict[str, int]:
    """pg_total_relation_size of each table (taken between migrations: it needs ACCESS SHARE)."""
    if not tables:
        return {}
    rows = await conn.fetch(
        "SELECT t, pg_total_relation_size(to_regclass(t)) FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL",
        tables,
    )
    return {name: size for name, size in rows}
