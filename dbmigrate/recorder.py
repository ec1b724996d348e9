"""The recorder: the only code that writes the bookkeeping tables.

Invariant: a row (name, app_name) in Piccolo's `migration` table means that migration of that app
is applied, and its absence means it is not. Rows are written on the migrating connection, inside
the migration's own transaction, so a crash can never separate the two (Piccolo itself inserts
after the commit). Keeping Piccolo's table, unchanged, means `piccolo migrations check` agrees
with our `status`.

Beside it, `dbmigrate_history` keeps what Piccolo does not: the checksum of each applied file,
when, how long and by whom, written in the same transaction; and, for a non-transactional
migration that failed midway (and so is not applied), the failure, until a rerun or a repair
clears it.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Exactly the table Piccolo 1.38's `Migration.create_table()` makes, so Piccolo reads our rows.
CREATE_PICCOLO_TABLE = """
CREATE TABLE IF NOT EXISTS "migration" (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "name" VARCHAR(200) NOT NULL DEFAULT '',
    "app_name" VARCHAR(200) NOT NULL DEFAULT '',
    "ran_on" TIMESTAMP NULL DEFAULT current_timestamp
)
"""

CREATE_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS dbmigrate_history (
    app_name text NOT NULL,
    migration_id text NOT NULL,
    state text NOT NULL CHECK (state IN ('applied', 'failed', 'file_removed')),
    checksum text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer,
    recorded_by text NOT NULL,
    error text,
    PRIMARY KEY (app_name, migration_id)
)
"""

APPLIED = "applied"
FAILED = "failed"
FILE_REMOVED = "file_removed"  # applied, and its file deliberately deleted (accepted by repair)


@dataclass(frozen=True)
class AppliedMigration:
    id: str
    ran_on: datetime | None
    sequence: int  # the order migrations were applied in (Piccolo's serial id)
    checksum: str | None  # None: recorded by Piccolo itself, or before checksums existed
    duration_ms: int | None
    recorded_by: str | None
    file_removed: bool


@dataclass(frozen=True)
class FailedMigration:
    id: str
    failed_at: datetime
    error: str


def who() -> str:
    """user@host pid N, so an operator can find who applied what."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


async def tables_exist(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT to_regclass('migration') IS NOT NULL")


async def ensure_tables(conn: asyncpg.Connection) -> None:
    """Create both tables if needed. Call under the migration lock: IF NOT EXISTS alone races."""
    await conn.execute(CREATE_PICCOLO_TABLE)
    await conn.execute(CREATE_HISTORY_TABLE)


async def applied(conn: asyncpg.Connection, app: str) -> dict[str, AppliedMigration]:
    """The applied migrations of `app`, in ID order. Empty when there is no table yet."""
    if not await tables_exist(conn):
        return {}
    rows = await conn.fetch(
        'SELECT name, min(ran_on) AS ran_on, min(id) AS sequence FROM "migration" WHERE app_name = $1 '
        "GROUP BY name ORDER BY name",
        app,
    )
    history = {r["migration_id"]: r for r in await _history(conn, app) if r["state"] != FAILED}
    result: dict[str, AppliedMigration] = {}
    for row in rows:
        h = history.get(row["name"])
        result[row["name"]] = AppliedMigration(
            id=row["name"],
            ran_on=row["ran_on"],
            sequence=row["sequence"],
            checksum=h["checksum"] if h else None,
            duration_ms=h["duration_ms"] if h else None,
            recorded_by=h["recorded_by"] if h else None,
            file_removed=bool(h and h["state"] == FILE_REMOVED),
        )
    return result


async def failed(conn: asyncpg.Connection, app: str) -> dict[str, FailedMigration]:
    """Non-transactional migrations that failed midway and have not been rerun or repaired since."""
    return {
        r["migration_id"]: FailedMigration(r["migration_id"], r["recorded_at"], r["error"] or "")
        for r in await _history(conn, app)
        if r["state"] == FAILED
    }


async def _history(conn: asyncpg.Connection, app: str) -> list[asyncpg.Record]:
    if not await conn.fetchval("SELECT to_regclass('dbmigrate_history') IS NOT NULL"):
        return []  # a database migrated by Piccolo alone so far
    return await conn.fetch("SELECT * FROM dbmigrate_history WHERE app_name = $1 ORDER BY migration_id", app)


async def record_applied(
    conn: asyncpg.Connection, app: str, migration_id: str, checksum: str, duration_ms: int | None
) -> None:
    """Both rows in one statement (one round trip); the upsert also clears an earlier failure."""
    await conn.execute(
        f"""
        WITH piccolo AS (
            INSERT INTO "migration" (name, app_name, ran_on) VALUES ($2, $1, now()::timestamp)
        )
        {_UPSERT_HISTORY.format(timing=_NEW_TIMING)}
        """,
        app,
        migration_id,
        APPLIED,
        checksum,
        duration_ms,
        who(),
        None,
    )


async def record_unapplied(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    """Forget `migration_id` of `app` only; Piccolo's backwards deletes the name across all apps."""
    await conn.execute(
        """
        WITH piccolo AS (DELETE FROM "migration" WHERE name = $2 AND app_name = $1)
        DELETE FROM dbmigrate_history WHERE app_name = $1 AND migration_id = $2
        """,
        app,
        migration_id,
    )


async def record_failure(conn: asyncpg.Connection, app: str, migration_id: str, checksum: str, error: str) -> None:
    """A non-transactional migration failed midway: not applied, maybe partly done. Shown by status."""
    await _upsert_history(conn, app, migration_id, FAILED, checksum, None, error)


async def record_checksum(conn: asyncpg.Connection, app: str, migration_id: str, checksum: str) -> None:
    """Accept the file's current content as what was applied (repair)."""
    await _upsert_history(conn, app, migration_id, APPLIED, checksum, None, None, keep_timing=True)


async def record_file_removed(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    await _upsert_history(conn, app, migration_id, FILE_REMOVED, "", None, None, keep_timing=True)


async def forget_failure(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    await conn.execute(
        "DELETE FROM dbmigrate_history WHERE app_name = $1 AND migration_id = $2 AND state = 'failed'",
        app,
        migration_id,
    )


_UPSERT_HISTORY = """
    INSERT INTO dbmigrate_history (app_name, migration_id, state, checksum, duration_ms, recorded_by, error)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (app_name, migration_id) DO UPDATE SET state = EXCLUDED.state, checksum = EXCLUDED.checksum,
        recorded_by = EXCLUDED.recorded_by, error = EXCLUDED.error, {timing}
"""
_NEW_TIMING = "duration_ms = EXCLUDED.duration_ms, recorded_at = now()"
_KEPT_TIMING = "duration_ms = dbmigrate_history.duration_ms, recorded_at = dbmigrate_history.recorded_at"


async def _upsert_history(
    conn: asyncpg.Connection,
    app: str,
    migration_id: str,
    state: str,
    checksum: str,
    duration_ms: int | None,
    error: str | None,
    keep_timing: bool = False,
) -> None:
    await conn.execute(
        _UPSERT_HISTORY.format(timing=_KEPT_TIMING if keep_timing else _NEW_TIMING),
        app,
        migration_id,
        state,
        checksum,
        duration_ms,
        who(),
        error,
    )
