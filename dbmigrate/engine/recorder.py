"""The recorder: the only code that writes the bookkeeping tables.

Invariant: a row (name, app_name) in Piccolo's `migration` table means that migration of that app
is applied, and its absence means it is not. Rows are written on the migrating connection, inside
the migration's own transaction, so a crash can never separate the two (Piccolo itself inserts
after the commit). Keeping Piccolo's table, unchanged, means `piccolo migrations check` agrees
with our `status`.

Beside it, `dbmigrate_history` keeps what Piccolo does not: the checksum of each applied file,
when, how long and by whom, written in the same transaction; and, for a non-transactional
migration that failed midway (and so is not applied), the failure, until a rerun or a repair
clears it. A non-transactional migration also leaves a trail while it runs: a `running` row,
written in autocommit before its first statement and updated after each one, so a runner killed
midway (or a server that went away) leaves behind which migration is incomplete, which statement
ran last, the digest of each statement that finished (a rerun resumes after them only while they
are unchanged) and the concurrent index build under way (what an INVALID leftover is named
after: leftovers.py). Each update rides on the round trip that records the statement before.
The applied row also keeps a copy of what `down` runs (down_sql, down_transactional), so a migration
whose file is gone (a branch switched away) can still be reverted (stored_down.py); NULL: none.

The tables themselves, and how they are created or upgraded: bookkeeping.py. Every statement
here names its table with its schema (`public.migration`), so the bookkeeping works whatever
search_path a migration set (a file pasted from pg_dump empties it). Piccolo finds its
`migration` table through the search_path; piccolo_cli pins Piccolo's table to `public` too,
so `piccolo migrations check` reads the same rows whatever the search_path. An application table
already named `public.migration` that is not Piccolo's is refused by name
(bookkeeping.NotPiccolosTable).
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.engine import bookkeeping

if TYPE_CHECKING:  # a no-op migrate reads the bookkeeping without the migration interface (start-up time)
    from dbmigrate.engine.migration import DownCopy, Migration

APPLIED = "applied"
FAILED = "failed"
RUNNING = "running"  # a non-transactional migration under way, or interrupted (see module docstring)
FILE_REMOVED = "file_removed"  # applied, and its file deliberately deleted (accepted by repair)


@dataclass(frozen=True)
class AppliedMigration:
    id: str
    ran_on: datetime | None  # Piccolo's column: a timestamp without time zone
    recorded_at: datetime | None  # ours, with time zone; None when Piccolo alone recorded it
    sequence: int  # the order migrations were applied in (Piccolo's serial id)
    checksum: str | None  # None: recorded by Piccolo itself, or before checksums existed
    duration_ms: int | None
    recorded_by: str | None
    file_removed: bool
    down_stored: bool = False  # a copy of what `down` runs is kept: it can be reverted without its file


@dataclass(frozen=True)
class FailedMigration:
    """A non-transactional migration that did not finish: it failed, or it was interrupted."""

    id: str
    failed_at: datetime
    error: str
    interrupted: bool  # the runner or the connection died: no error was seen
    statements_done: int | None
    statements_total: int | None
    last_statement: str | None  # the last statement that finished: "line 3: CREATE INDEX ..."
    finished_digests: tuple[str, ...] | None = None  # of each statement that finished, in order (statements.py)
    building: str | None = None  # the concurrent index build of the statement that did not finish (leftovers.py)


def who() -> str:
    """user@host pid N, so an operator can find who applied what."""
    return f"{_user_at_host()} pid {os.getpid()}"


@functools.cache  # once per process: the user database and the host name are read for every migration otherwise
def _user_at_host() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


async def read(conn: asyncpg.Connection, app: str) -> tuple[dict[str, AppliedMigration], dict[str, FailedMigration]]:
    """(applied, unfinished) migrations of `app`: each table read once. Empty when there are no tables yet."""
    layout = await bookkeeping.layout(conn)
    if not layout["piccolo"]:
        return {}, {}
    rows = await conn.fetch(
        'SELECT name, min(ran_on) AS ran_on, min(id) AS sequence FROM public."migration" WHERE app_name = $1 '
        "GROUP BY name ORDER BY name",
        app,
    )
    # Whether a down copy is kept, not the copy itself (only a revert without the file reads it).
    columns = "".join(f'"{c}", ' for c in layout["history_columns"] if c != "down_sql")
    stored = "down_sql IS NOT NULL" if "down_sql" in layout["history_columns"] else "false"
    history = (  # absent on a database migrated by Piccolo alone so far
        await conn.fetch(
            f"SELECT {columns}{stored} AS down_stored FROM public.dbmigrate_history WHERE app_name = $1 "
            "ORDER BY migration_id",
            app,
        )
        if layout["history"]
        else []
    )
    return _applied(rows, history), _unfinished(history)


async def applied(conn: asyncpg.Connection, app: str) -> dict[str, AppliedMigration]:
    """The applied migrations of `app`, in ID order. Empty when there is no table yet."""
    return (await read(conn, app))[0]


async def failed(conn: asyncpg.Connection, app: str) -> dict[str, FailedMigration]:
    """Non-transactional migrations that failed or were interrupted midway, not rerun or repaired since."""
    return (await read(conn, app))[1]


def _applied(rows: list[asyncpg.Record], history: list[asyncpg.Record]) -> dict[str, AppliedMigration]:
    done = {r["migration_id"]: r for r in history if r["state"] not in (FAILED, RUNNING)}
    result: dict[str, AppliedMigration] = {}
    for row in rows:
        h = done.get(row["name"])
        result[row["name"]] = AppliedMigration(
            id=row["name"],
            ran_on=row["ran_on"],
            recorded_at=h["recorded_at"] if h else None,
            sequence=row["sequence"],
            checksum=h["checksum"] if h else None,
            duration_ms=h["duration_ms"] if h else None,
            recorded_by=h["recorded_by"] if h else None,
            file_removed=bool(h and h["state"] == FILE_REMOVED),
            down_stored=bool(h and h["down_stored"]),
        )
    return result


def _unfinished(history: list[asyncpg.Record]) -> dict[str, FailedMigration]:
    return {
        r["migration_id"]: FailedMigration(
            id=r["migration_id"],
            failed_at=r["recorded_at"],
            error=r["error"] or "",
            interrupted=r["state"] == RUNNING,
            statements_done=r.get("statements_done"),
            statements_total=r.get("statements_total"),
            last_statement=r.get("last_statement"),
            finished_digests=tuple(r["finished_digests"]) if r.get("finished_digests") is not None else None,
            building=r.get("building"),
        )
        for r in history
        if r["state"] in (FAILED, RUNNING)
    }


async def record_applied(
    conn: asyncpg.Connection,
    app: str,
    migration_id: str,
    checksum: str,
    duration_ms: int | None,
    down: DownCopy | None = None,
) -> None:
    """Both rows in one statement (one round trip), with the copy of what `down` runs; the upsert
    also clears an earlier failure."""
    await conn.execute(
        applied_sql(_PARAMETERS.split(", ")),
        app,
        migration_id,
        APPLIED,
        checksum,
        duration_ms,
        who(),
        None,
        down.sql if down else None,
        down.transactional if down else None,
    )


async def record_run(conn: asyncpg.Connection, app: str, migration: Migration, backwards: bool, started: float) -> int:
    """The bookkeeping of a run of `migration` that finished: applied (record_applied, with its
    duration since `started`, a time.perf_counter()) or, backwards, forgotten (record_unapplied).
    Returns the duration recorded, in milliseconds."""
    duration_ms = round((time.perf_counter() - started) * 1000)
    if backwards:
        await record_unapplied(conn, app, migration.id)
    else:
        await record_applied(conn, app, migration.id, migration.file.checksum, duration_ms, migration.down_copy)
    return duration_ms


def applied_sql(values: list[str], at: str = "now()", tell: str | None = None) -> str:
    """Piccolo's row and the history's upsert in one statement; `values`: an SQL expression for each
    history column (app, ID, state, checksum, duration, by, error, down copy, its transactional);
    `at`: when it was recorded; `tell`: an expression of the row's duration_ms to select after."""
    piccolo = (
        f'piccolo AS (INSERT INTO public."migration" (name, app_name, ran_on) '
        f"VALUES ({values[1]}, {values[0]}, {at}::timestamp))"
    )
    history = _UPSERT_HISTORY.format(values=", ".join(values), applied=_APPLIED, at=at)
    if tell is None:
        return f"WITH {piccolo} {history}"
    return f"WITH {piccolo}, recorded AS ({history} RETURNING duration_ms) SELECT {tell} FROM recorded"


# Forget a migration of one app only; Piccolo's backwards deletes the name across all apps.
UNAPPLIED_SQL = (
    'WITH piccolo AS (DELETE FROM public."migration" WHERE name = {name} AND app_name = {app}) '
    "DELETE FROM public.dbmigrate_history WHERE app_name = {app} AND migration_id = {name}"
)


async def applied_among(conn: asyncpg.Connection, app: str, migration_ids: list[str]) -> int:
    """How many of `migration_ids` of `app` are applied."""
    return await conn.fetchval(
        "SELECT count(*)::int FROM public.dbmigrate_history WHERE app_name = $1 AND migration_id = ANY($2::text[]) "
        "AND state = $3",
        app,
        migration_ids,
        APPLIED,
    )


async def recorded_duration(conn: asyncpg.Connection, app: str, migration_id: str) -> int | None:
    return await conn.fetchval(
        "SELECT duration_ms FROM public.dbmigrate_history WHERE app_name = $1 AND migration_id = $2", app, migration_id
    )


async def record_unapplied(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    """Forget `migration_id` of `app` only (UNAPPLIED_SQL)."""
    await conn.execute(UNAPPLIED_SQL.format(app="$1", name="$2"), app, migration_id)


async def record_started(
    conn: asyncpg.Connection,
    app: str,
    migration_id: str,
    checksum: str,
    total: int | None,
    resuming: bool = False,
    building: str | None = None,
) -> None:
    """A non-transactional migration is about to run its first statement (autocommit: it stays);
    `resuming`: after the statements an earlier run finished, whose trail is kept."""
    await conn.execute(
        """
        INSERT INTO public.dbmigrate_history (app_name, migration_id, state, checksum, recorded_by, statements_done,
                                              statements_total, finished_digests, building)
        VALUES ($1, $2, $3, $4, $5, 0, $6, '{}', $7)
        ON CONFLICT (app_name, migration_id) DO UPDATE SET state = EXCLUDED.state, checksum = EXCLUDED.checksum,
            recorded_by = EXCLUDED.recorded_by, error = NULL, duration_ms = NULL, recorded_at = now(),
            statements_total = EXCLUDED.statements_total, building = EXCLUDED.building,
            statements_done = CASE WHEN $8 THEN dbmigrate_history.statements_done ELSE 0 END,
            last_statement = CASE WHEN $8 THEN dbmigrate_history.last_statement END,
            finished_digests = CASE WHEN $8 THEN dbmigrate_history.finished_digests ELSE '{}' END
        """,
        app,
        migration_id,
        RUNNING,
        checksum,
        who(),
        total,
        building,
        resuming,
    )


async def record_progress(
    conn: asyncpg.Connection,
    app: str,
    migration_id: str,
    done: int,
    statement: str,
    digest: str,
    building: str | None = None,
) -> None:
    """Statement number `done` of a non-transactional migration finished (autocommit); `building`:
    the concurrent index build of the next one."""
    await conn.execute(
        "UPDATE public.dbmigrate_history SET statements_done = $3, last_statement = $4, recorded_at = now(), "
        "finished_digests = array_append(COALESCE(finished_digests, '{}'), $5), building = $6 "
        "WHERE app_name = $1 AND migration_id = $2",
        app,
        migration_id,
        done,
        statement,
        digest,
        building,
    )


async def record_failure(conn: asyncpg.Connection, app: str, migration_id: str, error: str) -> None:
    """A non-transactional migration failed midway: not applied, maybe partly done. Shown by status.
    Keeps the progress written while it ran."""
    await conn.execute(
        "UPDATE public.dbmigrate_history SET state = $3, error = $4, recorded_at = now() "
        "WHERE app_name = $1 AND migration_id = $2",
        app,
        migration_id,
        FAILED,
        error,
    )


async def record_checksum(conn: asyncpg.Connection, app: str, migration_id: str, checksum: str) -> None:
    """Accept the file's current content as what was applied (repair)."""
    await _upsert_history(conn, app, migration_id, APPLIED, checksum)


async def record_file_removed(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    await _upsert_history(conn, app, migration_id, FILE_REMOVED, "")


async def forget_failure(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    await conn.execute(
        "DELETE FROM public.dbmigrate_history "
        "WHERE app_name = $1 AND migration_id = $2 AND state IN ('failed', 'running')",
        app,
        migration_id,
    )


_UPSERT_HISTORY = """
    INSERT INTO public.dbmigrate_history (app_name, migration_id, state, checksum, duration_ms, recorded_by, error,
                                          down_sql, down_transactional, recorded_at)
    VALUES ({values}, {at})
    ON CONFLICT (app_name, migration_id) DO UPDATE SET state = EXCLUDED.state, checksum = EXCLUDED.checksum,
        recorded_by = EXCLUDED.recorded_by, error = EXCLUDED.error, {applied}
        statements_done = NULL, statements_total = NULL, last_statement = NULL, finished_digests = NULL,
        building = NULL
"""
_PARAMETERS = "$1, $2, $3, $4, $5, $6, $7, $8, $9"
# Applied again: its timing and down copy are new; a repair's row keeps those it was applied with.
_APPLIED = (
    "duration_ms = EXCLUDED.duration_ms, recorded_at = EXCLUDED.recorded_at, down_sql = EXCLUDED.down_sql, "
    "down_transactional = EXCLUDED.down_transactional,"
)


async def _upsert_history(conn: asyncpg.Connection, app: str, migration_id: str, state: str, checksum: str) -> None:
    await conn.execute(
        _UPSERT_HISTORY.format(values=_PARAMETERS, applied="", at="now()"),
        app,
        migration_id,
        state,
        checksum,
        None,
        who(),
        None,
        None,
        None,
    )
