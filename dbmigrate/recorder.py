"""The recorder: the only code that writes the bookkeeping table.

Invariant: a row (name, app_name) in Piccolo's `migration` table means that migration of that app
is applied, and its absence means it is not. Rows are written on the migrating connection, inside
the migration's own transaction, so a crash can never separate the two (Piccolo itself inserts
after the commit). Keeping Piccolo's table, unchanged, means `piccolo migrations check` agrees with
our `status`.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

TABLE = "migration"

# Exactly the table Piccolo 1.38's `Migration.create_table()` makes, so Piccolo reads our rows.
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS "migration" (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "name" VARCHAR(200) NOT NULL DEFAULT '',
    "app_name" VARCHAR(200) NOT NULL DEFAULT '',
    "ran_on" TIMESTAMP NULL DEFAULT current_timestamp
)
"""


async def table_exists(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT to_regclass('migration') IS NOT NULL")


async def ensure_table(conn: asyncpg.Connection) -> None:
    """Create the table if needed. Call under the migration lock: IF NOT EXISTS alone still races."""
    await conn.execute(CREATE_TABLE)


async def applied(conn: asyncpg.Connection, app: str) -> dict[str, datetime | None]:
    """The applied migrations of `app`, ID -> when, in ID order. Empty when there is no table."""
    if not await table_exists(conn):
        return {}
    rows = await conn.fetch(
        'SELECT name, min(ran_on) AS ran_on FROM "migration" WHERE app_name = $1 GROUP BY name ORDER BY name',
        app,
    )
    return {row["name"]: row["ran_on"] for row in rows}


async def record_applied(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    await conn.execute(
        'INSERT INTO "migration" (name, app_name, ran_on) VALUES ($1, $2, now()::timestamp)',
        migration_id,
        app,
    )


async def record_unapplied(conn: asyncpg.Connection, app: str, migration_id: str) -> None:
    """Forget `migration_id` of `app` only; Piccolo's backwards deletes the name across all apps."""
    await conn.execute('DELETE FROM "migration" WHERE name = $1 AND app_name = $2', migration_id, app)
