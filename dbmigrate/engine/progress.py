"""The progress of staged migrations (staged.py): table `dbmigrate_batches`, and the only code that writes it.

A staged migration runs as stages, each in short transactions of its own: an SQL stage is one
transaction, a batches stage one transaction per batch. One row per (app, migration) says how far
it got, and is written in the transaction of the work it describes, so it can never say more or
less than what committed. Invariant: `stage` is the number of stages committed; within the
batches stage under way, every key up to `cursor` (the table's key, as text) was processed
exactly once and no key after it was, because the cursor moves in the transaction of the batch
that processed those keys. `state` becomes 'done' only in the transaction that records the
migration applied (recorder.py), and the row goes in the one that records it reverted.

`paused` is an operator's request, set by `make db-migrate-pause` from any connection: the runner
reads it in each batch's transaction and stops after that batch commits. It survives runs until
`make db-migrate-resume` clears it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dbmigrate.engine.recorder import who

TABLE = "dbmigrate_batches"

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    app_name text NOT NULL,
    migration_id text NOT NULL,
    checksum text,
    state text NOT NULL DEFAULT 'pending'
        CONSTRAINT {TABLE}_state_check CHECK (state IN ('pending', 'running', 'done')),
    stage integer NOT NULL DEFAULT 0,
    stages integer,
    batch_stage integer,
    cursor text,
    rows_done bigint NOT NULL DEFAULT 0,
    rows_changed bigint NOT NULL DEFAULT 0,
    rows_total bigint,
    batch_size integer,
    seconds double precision NOT NULL DEFAULT 0,
    paused boolean NOT NULL DEFAULT false,
    paused_by text,
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (app_name, migration_id)
)
"""

PENDING, RUNNING, DONE = "pending", "running", "done"


@dataclass(frozen=True)
class Progress:
    migration_id: str
    checksum: str | None
    state: str
    stage: int  # stages committed
    stages: int | None
    batch_stage: int | None  # the stage (counted from 0) that cursor and the row counts belong to
    cursor: str | None
    rows_done: int
    rows_changed: int
    rows_total: int | None
    batch_size: int | None
    seconds: float  # time spent in this stage's batches, over every run
    paused: bool
    paused_by: str | None
    updated_at: datetime | None

    @property
    def rows_per_second(self) -> float | None:
        return self.rows_done / self.seconds if self.seconds > 0 and self.rows_done else None

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rows_per_second
        if self.state == DONE:
            return 0.0
        if rate is None or self.rows_total is None:
            return None
        return max(self.rows_total - self.rows_done, 0) / rate


def _progress(row: asyncpg.Record) -> Progress:
    return Progress(**{name: row[name] for name in Progress.__dataclass_fields__})


async def ensure_table(conn: asyncpg.Connection) -> None:
    """Create the table if needed; safe from any connection (a pause does not wait for the
    migration lock), so a concurrent creation is retried rather than raced."""
    for attempt in range(5):
        try:
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
                await conn.execute(CREATE_TABLE)
            return
        except (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError, asyncpg.DuplicateObjectError):
            await asyncio.sleep(0.05 * (attempt + 1))


async def read(conn: asyncpg.Connection, app: str, migration_id: str | None = None) -> dict[str, Progress]:
    """The progress rows of `app` (of one migration when given), by migration ID; {} without a table."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
        return {}
    rows = await conn.fetch(
        f"SELECT * FROM {TABLE} WHERE app_name = $1 AND ($2::text IS NULL OR migration_id = $2) ORDER BY migration_id",
        app,
        migration_id,
    )
    return {row["migration_id"]: _progress(row) for row in rows}


async def stage_done(
    conn: asyncpg.Connection, app: str, migration_id: str, checksum: str, stage: int, stages: int
) -> None:
    """Stage number `stage` (counted from 1) committed: in that stage's own transaction."""
    await conn.execute(
        f"""
        INSERT INTO {TABLE} AS p (app_name, migration_id, checksum, state, stage, stages, started_at)
        VALUES ($1, $2, $3, '{RUNNING}', $4, $5, now())
        ON CONFLICT (app_name, migration_id) DO UPDATE SET checksum = EXCLUDED.checksum, state = EXCLUDED.state,
            stage = EXCLUDED.stage, stages = EXCLUDED.stages, started_at = COALESCE(p.started_at, now()),
            updated_at = now()
        """,
        app,
        migration_id,
        checksum,
        stage,
        stages,
    )


async def batches_started(
    conn: asyncpg.Connection, app: str, migration_id: str, checksum: str, stage: int, stages: int, total: int
) -> None:
    """A batches stage begins (stage = the stages committed before it): its row, with the rows to do."""
    await stage_done(conn, app, migration_id, checksum, stage, stages)
    await conn.execute(
        f"UPDATE {TABLE} SET batch_stage = $3, rows_total = $4, cursor = NULL, rows_done = 0, rows_changed = 0, "
        "seconds = 0 WHERE app_name = $1 AND migration_id = $2",
        app,
        migration_id,
        stage,
        total,
    )


# The tail of each batch's statement (batches.py): the progress moves in the batch's transaction.
# $1 app, $2 migration, $3 batch size, $4 the stage number once the batch found no key, $5 seconds.
ADVANCE = f"""
UPDATE {TABLE} SET
    cursor = COALESCE((SELECT upper FROM bounds)::text, cursor),
    rows_done = rows_done + (SELECT n FROM bounds),
    rows_changed = rows_changed + (SELECT count(*) FROM changed),
    batch_size = $3,
    seconds = seconds + $5,
    stage = CASE WHEN (SELECT n FROM bounds) = 0 THEN $4 ELSE stage END,
    updated_at = now()
WHERE app_name = $1 AND migration_id = $2
RETURNING (SELECT n FROM bounds) AS n, (SELECT count(*) FROM changed) AS changed, cursor, rows_done, rows_total,
    paused, paused_by
"""


async def finished(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    """In the transaction that records the migration applied."""
    await conn.execute(
        f"UPDATE {TABLE} SET state = '{DONE}', finished_at = now(), updated_at = now() "
        "WHERE app_name = $1 AND migration_id = $2",
        app,
        migration_id,
    )


async def forget(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    """In the transaction that records the migration reverted."""
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
        await conn.execute(f"DELETE FROM {TABLE} WHERE app_name = $1 AND migration_id = $2", app, migration_id)


async def set_paused(conn: asyncpg.Connection, app: str, migration_id: str, paused: bool) -> Progress:
    """Ask the runner of `migration_id` to stop after its current batch (or clear the request).
    A migration not started yet gets a 'pending' row, so it will not start until resumed."""
    await ensure_table(conn)
    row = await conn.fetchrow(
        f"""
        INSERT INTO {TABLE} AS p (app_name, migration_id, paused, paused_by) VALUES ($1, $2, $3, $4)
        ON CONFLICT (app_name, migration_id) DO UPDATE SET paused = EXCLUDED.paused, paused_by = EXCLUDED.paused_by,
            updated_at = now()
        RETURNING *
        """,
        app,
        migration_id,
        paused,
        who() if paused else None,
    )
    return _progress(row)
