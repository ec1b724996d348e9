"""The bookkeeping tables: Piccolo's `migration` table and `dbmigrate_history`, their layout, and
`ensure_tables`, which creates them (or upgrades a history table made by an older dbmigrate).

Invariant: Piccolo's table is exactly the one Piccolo 1.38 makes, so Piccolo reads our rows; an
application's own table named `public.migration` is refused by name (NotPiccolosTable), never
written into. What the rows mean, and the only code that writes them: recorder.py.
"""

from __future__ import annotations

import asyncpg

from dbmigrate.core.errors import UserError

SCHEMA = "public"  # where the bookkeeping lives (and where Piccolo, with the default search_path, finds it)
PICCOLO_TABLE = f'{SCHEMA}."migration"'
HISTORY_TABLE = f"{SCHEMA}.dbmigrate_history"
PICCOLO_COLUMNS = ("id", "name", "app_name", "ran_on")  # Piccolo 1.38's layout, which we read and write

# Exactly the table Piccolo 1.38's `Migration.create_table()` makes, so Piccolo reads our rows.
CREATE_PICCOLO_TABLE = """
CREATE TABLE IF NOT EXISTS public."migration" (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "name" VARCHAR(200) NOT NULL DEFAULT '',
    "app_name" VARCHAR(200) NOT NULL DEFAULT '',
    "ran_on" TIMESTAMP NULL DEFAULT current_timestamp
)
"""

CREATE_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS public.dbmigrate_history (
    app_name text NOT NULL,
    migration_id text NOT NULL,
    state text NOT NULL CONSTRAINT dbmigrate_history_state_check
        CHECK (state IN ('applied', 'failed', 'running', 'file_removed')),
    checksum text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer,
    recorded_by text NOT NULL,
    error text,
    statements_done integer,
    statements_total integer,
    last_statement text,
    finished_digests text[],
    building text,
    down_sql text,
    down_transactional boolean,
    PRIMARY KEY (app_name, migration_id)
)
"""

# The columns of a non-transactional migration's trail and the down copy, added to tables made before them.
_LATER_COLUMNS = ("statements_done", "statements_total", "last_statement", "finished_digests", "building", "down_sql")
# A table made before non-transactional migrations were tracked statement by statement, or down copies kept.
_UPGRADE_HISTORY_TABLE = """
ALTER TABLE public.dbmigrate_history
    ADD COLUMN IF NOT EXISTS statements_done integer,
    ADD COLUMN IF NOT EXISTS statements_total integer,
    ADD COLUMN IF NOT EXISTS last_statement text,
    ADD COLUMN IF NOT EXISTS finished_digests text[],
    ADD COLUMN IF NOT EXISTS building text,
    ADD COLUMN IF NOT EXISTS down_sql text,
    ADD COLUMN IF NOT EXISTS down_transactional boolean,
    DROP CONSTRAINT IF EXISTS dbmigrate_history_state_check,
    ADD CONSTRAINT dbmigrate_history_state_check CHECK (state IN ('applied', 'failed', 'running', 'file_removed'))
"""


# One round trip: which bookkeeping tables exist, and their columns.
_LAYOUT = """
SELECT to_regclass('public.migration') IS NOT NULL AS piccolo,
       to_regclass('public.dbmigrate_history') IS NOT NULL AS history,
       ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass('public.migration')
             AND attnum > 0 AND NOT attisdropped) AS piccolo_columns,
       ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass('public.dbmigrate_history')
             AND attnum > 0 AND NOT attisdropped) AS history_columns
"""


class NotPiccolosTable(UserError):
    """`public.migration` exists and is an application's table, not Piccolo's bookkeeping."""


async def layout(conn: asyncpg.Connection) -> asyncpg.Record:
    """Which tables exist, and their columns; NotPiccolosTable for an application's `migration`."""
    found = await conn.fetchrow(_LAYOUT)
    if found["piccolo"] and not set(PICCOLO_COLUMNS) <= set(found["piccolo_columns"]):
        columns = ", ".join(found["piccolo_columns"]) or "none"
        raise NotPiccolosTable(
            f"table {SCHEMA}.migration is not Piccolo's bookkeeping table (its columns: {columns}; Piccolo's: "
            f"{', '.join(PICCOLO_COLUMNS)}): Piccolo and dbmigrate record migrations in {SCHEMA}.migration, so "
            f"rename the application's table (ALTER TABLE {SCHEMA}.migration RENAME TO ...) and migrate again"
        )
    return found


async def ensure_tables(conn: asyncpg.Connection) -> None:
    """Create both tables if needed. Call under the migration lock: IF NOT EXISTS alone races."""
    found = await layout(conn)  # refuses an application's `migration` before creating anything
    # Always sent, even when both exist: a read-only database or a role without CREATE is found
    # here (failures.bookkeeping_refused), before any migration runs.
    await conn.execute(f"{CREATE_PICCOLO_TABLE};\n{CREATE_HISTORY_TABLE}")
    if found["history"] and not set(_LATER_COLUMNS) <= set(found["history_columns"]):
        await conn.execute(_UPGRADE_HISTORY_TABLE)
