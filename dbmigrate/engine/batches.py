"""A batches stage: one UPDATE applied to a table in batches by key range, each batch its own short
transaction, resuming where a killed run stopped.

Each batch is one statement in one transaction (so it works through PgBouncer in transaction
mode like any migration): it takes the next `size` keys after the cursor, updates the rows in
that range, and moves the cursor in `dbmigrate_batches` (progress.py), all or nothing. The batch
runs under a short lock_timeout, so it never queues for long behind the application (and the
application never waits long behind it); a batch that times out or deadlocks is rolled back and
retried, smaller, after a pause. The batch size adapts so that each batch takes about the target
time (BATCH_TIME), and the runner sleeps a fraction of that between batches, leaving the table to
the application. Invariant: the cursor only moves in the transaction of the batch that processed
the keys up to it, so every row is updated exactly once however often the run is killed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import interactive, say
from dbmigrate.engine import progress
from dbmigrate.server.connection import quote_identifier

MIN_BATCH, MAX_BATCH, FIRST_BATCH = 10, 100_000, 100
MAX_GROWTH = 2.0  # a batch is at most twice the last one, and at least half (overshoots shrink faster)
RETRIES = 30  # batches in a row that may hit lock_timeout before the stage gives up
_RETRYABLE = (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_EXACT_COUNT_BELOW = 1_000_000  # rows by pg_class.reltuples below which the total is counted exactly


@dataclass(frozen=True)
class BatchStage:
    """`UPDATE table SET <set> WHERE <where>`, done in batches of keys (the primary key by default)."""

    table: str
    set: str
    where: str | None = None
    key: str | None = None  # a unique, indexed column; None: the table's one-column primary key
    batch_time: float = 0.05  # seconds each batch should take
    lock_timeout: str = "50ms"
    statement_timeout: str = "1min"
    rest: float = 0.1  # sleep between batches, as a fraction of the last batch's time
    backwards: str | None = None  # None: cannot be undone; NOTHING_TO_UNDO: nothing to undo

    def preview(self) -> str:
        where = f" AND ({self.where})" if self.where else ""
        key = self.key or "<primary key>"
        return (
            f"-- in batches of keys, each its own transaction, about {self.batch_time * 1000:g} ms each:\n"
            f"UPDATE {self.table} SET {self.set} WHERE {key} > :cursor AND {key} <= :cursor_after_batch{where}"
        )


def next_batch_size(size: int, took: float, target: float) -> int:
    """The size of the next batch, so that it takes about `target` seconds when this one of `size`
    rows took `took`: proportional, at most doubling, at least halving."""
    if took <= 0:
        return min(int(size * MAX_GROWTH), MAX_BATCH)
    wanted = size * target / took
    return max(MIN_BATCH, min(MAX_BATCH, int(min(max(wanted, size / MAX_GROWTH), size * MAX_GROWTH))))


def qualified(name: str) -> str:
    """`schema.table` or `table`, each part quoted as an identifier."""
    return ".".join(quote_identifier(part) for part in name.split("."))


def batch_statement(stage: BatchStage, key: str, key_type: str, first: bool) -> str:
    """The statement of one batch: progress.ADVANCE's parameters ($1-$5) and the cursor ($6)."""
    table, column = qualified(stage.table), quote_identifier(key)
    after = "" if first else f"WHERE {column} > $6::text::{key_type}"
    lower = "" if first else f"{column} > $6::text::{key_type} AND "
    where = f" AND ({stage.where})" if stage.where else ""
    return f"""
WITH batch AS (
    SELECT {column} AS k FROM {table} {after} ORDER BY {column} LIMIT $3
), bounds AS (  -- no max(): uuid has none
    SELECT (SELECT k FROM batch ORDER BY k DESC LIMIT 1) AS upper, (SELECT count(*) FROM batch) AS n
), changed AS (
    UPDATE {table} SET {stage.set}
    WHERE {lower}{column} <= (SELECT upper FROM bounds){where}
    RETURNING 1
)
{progress.ADVANCE}"""


async def key_of(conn: asyncpg.Connection, stage: BatchStage) -> tuple[str, str]:
    """(key column, its type) of the stage's table: the given key, or the one-column primary key."""
    table = qualified(stage.table)
    if stage.key:
        key_type = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass "
            "AND attname = $2 AND NOT attisdropped",
            table,
            stage.key,
        )
        if key_type is None:
            raise UserError(f"batches of {stage.table}: it has no column {stage.key!r} to batch by")
        return stage.key, key_type
    keys = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
        "WHERE i.indrelid = $1::regclass AND i.indisprimary",
        table,
    )
    if len(keys) != 1:
        raise UserError(
            f"batches of {stage.table}: it has {'no' if not keys else 'a multi-column'} primary key; "
            "name a unique, indexed column to batch by with key=..."
        )
    return keys[0]["attname"], keys[0]["type"]


async def rows_to_do(conn: asyncpg.Connection, stage: BatchStage) -> int:
    """The table's rows: counted below a million (by the planner's estimate), else that estimate."""
    table = qualified(stage.table)
    estimate = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass", table)
    if estimate is None or estimate < _EXACT_COUNT_BELOW:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    return estimate


@dataclass
class Job:
    """One batches stage of one migration, as the runner sees it."""

    conn: asyncpg.Connection
    stage: BatchStage
    app: str
    migration_id: str
    stage_number: int  # what progress.stage becomes when the stage is done
    fence: Callable[[], Awaitable[None]]


async def run(job: Job, row: progress.Progress) -> None:
    """Run batches from the cursor in `row` until no key is left, or until a pause is asked for."""
    conn, stage = job.conn, job.stage
    key, key_type = await key_of(conn, stage)
    statements = {first: batch_statement(stage, key, key_type, first) for first in (True, False)}
    prelude = f"SET LOCAL lock_timeout = '{_quoted(stage.lock_timeout)}'; "
    prelude += f"SET LOCAL statement_timeout = '{_quoted(stage.statement_timeout)}'"
    size, cursor, failures = row.batch_size or FIRST_BATCH, row.cursor, 0
    meter = _Meter(job.migration_id, row.rows_done, row.rows_total)
    # The time a batch took, its rest after it and any retries, is added to the progress row by
    # the next batch (it is known only after the commit): the rate status shows is rows per second
    # of running, across runs.
    since, interval = time.monotonic(), 0.0
    while True:
        started = time.monotonic()
        try:
            await conn.execute(f"BEGIN; {prelude}")
            try:
                await job.fence()
                args = (job.app, job.migration_id, size, job.stage_number, interval)
                result = await conn.fetchrow(statements[cursor is None], *args, *(() if cursor is None else (cursor,)))
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        except _RETRYABLE as error:
            failures += 1
            if failures > RETRIES:
                raise UserError(
                    f"{job.app}: {job.migration_id}: {failures} batches in a row of {stage.table} waited past "
                    f"lock_timeout {stage.lock_timeout} ({type(error).__name__}); what is done is kept: run migrate "
                    "again when the table is quieter"
                ) from None
            size = max(MIN_BATCH, size // 2)
            await asyncio.sleep(min(0.05 * 2**failures, 2.0))
            continue
        took, failures = time.monotonic() - started, 0
        if result is None:
            raise UserError(f"{job.app}: {job.migration_id}: its progress row vanished midway; run migrate again")
        meter.show(result["rows_done"], result["rows_total"])
        if result["n"] == 0:
            meter.close()
            return
        cursor = result["cursor"]
        if result["paused"]:
            meter.close()
            raise paused(job.app, job.migration_id, result["paused_by"], result["rows_done"], result["rows_total"])
        size = next_batch_size(size, took, stage.batch_time)
        await asyncio.sleep(took * stage.rest)
        interval, since = time.monotonic() - since, time.monotonic()


def paused(app: str, migration_id: str, by: str | None, done: int, total: int | None) -> UserError:
    of = f" of {total:,}" if total is not None else ""
    return UserError(
        f"{app}: {migration_id} is paused (by {by or 'an operator'}), {done:,}{of} rows done; it and the migrations "
        f"after it wait: `make db-migrate-resume DB={app} ID={migration_id}`, then migrate again, go on from there"
    )


def _quoted(value: str) -> str:
    return value.replace("'", "''")


class _Meter:
    """Rows done, rate and time left: a bar redrawn on a terminal, else a line every 10 seconds."""

    WIDTH = 30

    def __init__(self, migration_id: str, done: int, total: int | None) -> None:
        self.migration_id, self.first_done, self.started = migration_id, done, time.monotonic()
        self.bar, self.drawn = interactive(), False
        self.last_shown = 0.0 if self.bar else time.monotonic()

    def show(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last_shown < (0.1 if self.bar else 10.0):
            return
        self.last_shown = now
        rate = (done - self.first_done) / (now - self.started) if now > self.started else 0.0
        left = f", {max((total or 0) - done, 0) / rate:.0f} s left" if rate > 0 and total else ""
        share = min(done / total, 1.0) if total else 0.0
        text = f"{self.migration_id}: {done:,} of {total:,} rows" if total else f"{self.migration_id}: {done:,} rows"
        text += f" ({share:.0%}), {rate:,.0f} rows/s{left}"
        if self.bar:
            filled = round(self.WIDTH * share)
            sys.stderr.write(f"\r[{'#' * filled}{'-' * (self.WIDTH - filled)}] {text}\033[K")
            sys.stderr.flush()
            self.drawn = True
        else:
            say(text)

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
