"""Adopting a live database: what another tool applied, recorded as applied here, so nothing runs twice.

`make db-migrate-baseline DB=x FROM_TOOL=<tool>` reads the tool's own bookkeeping table on the
database, matches each version it lists to an imported migration file (its `SOURCE_TOOL` and
`SOURCE_VERSION`, see writer.py) and records those as applied, without running them, in one
transaction under the migration lock. Migrations the tool never applied stay pending.

The tool tables read (their default names, found through the connection's search_path):

  * node-pg-migrate: `pgmigrations(name)`, one row per applied migration;
  * dbmate: `schema_migrations(version)`, one row per applied migration;
  * golang-migrate: `schema_migrations(version, dirty)`, one row: everything up to `version` is
    applied. A dirty row (a migration failed midway) is refused until it is fixed;
  * Flyway: `flyway_schema_history`, read in `installed_rank` order: successful versioned rows
    apply, undo rows unapply, a baseline row applies every version up to it. A failed row is
    refused until `flyway repair`.

Whatever the tool table says that no imported file accounts for is refused, naming it.
"""

from __future__ import annotations

import asyncpg

from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import bookkeeping, files, recorder
from dbmigrate.engine.files import order_key
from dbmigrate.engine.lock import migration_lock
from dbmigrate.importing.flyway import flyway_version_key
from dbmigrate.importing.source import DBMATE, FLYWAY, FORMATS, GOLANG_MIGRATE, NODE_PG_MIGRATE
from dbmigrate.importing.writer import source_of
from dbmigrate.server import connection

TOOL_TABLES = {
    NODE_PG_MIGRATE: "pgmigrations",
    DBMATE: "schema_migrations",
    GOLANG_MIGRATE: "schema_migrations",
    FLYWAY: "flyway_schema_history",
}


def version_key(tool: str, version: str):
    """Equal keys for versions the tool treats as equal (Flyway's 1.0 is 1; golang-migrate's 007 is 7)."""
    if tool == FLYWAY:
        return flyway_version_key(version)
    if tool == GOLANG_MIGRATE and version.isdigit():
        return int(version)
    return version


async def baseline_from_tool(settings: Settings, database: Database, tool: str) -> list[str]:
    """Record as applied every imported migration that `tool`'s table on `database` says it applied.
    Returns the IDs newly recorded."""
    if tool not in FORMATS:
        raise UsageError(f"unknown FROM_TOOL {tool!r}: choose one of {', '.join(FORMATS)}")
    imported = {}
    for migration in files.discover(settings.project_root, database):
        source = source_of(migration.path)
        if source and source[0] == tool:
            imported[version_key(tool, source[1])] = migration
    if not imported:
        raise UserError(
            f"{database.name}: no migration was imported from {tool}: "
            f"run `make db-migrate-import FROM=<folder> DB={database.name}` first"
        )
    await connection.prepare(settings, [database])
    conn = await connection.connect(settings, connection.url_for(settings, database), f"baseline {database.name}")
    try:
        async with migration_lock(conn, database.name, settings.lock_wait_seconds):
            try:
                versions = await _applied_by_tool(conn, database, tool, imported)
            except asyncpg.PostgresError as error:  # a table of that name, but not the tool's shape
                raise UserError(
                    f"{database.name}: {TOOL_TABLES[tool]} cannot be read as {tool}'s table: "
                    f"{str(error).strip().splitlines()[0]}"
                ) from None
            unknown = [version for version in versions if version_key(tool, version) not in imported]
            if unknown:
                raise UserError(
                    f"{database.name}: {TOOL_TABLES[tool]} says {tool} applied {unknown[0]}"
                    f"{f' and {len(unknown) - 1} more' if len(unknown) > 1 else ''}, but no imported migration "
                    "is that version: import the complete history (the same folder the tool ran from)"
                )
            async with conn.transaction():  # all of it or none of it
                await bookkeeping.ensure_tables(conn)
                recorded = await recorder.applied(conn, database.app)
                marked = sorted(
                    {imported[version_key(tool, v)] for v in versions}
                    - {m for m in imported.values() if m.id in recorded},
                    key=lambda m: order_key(m.id),
                )
                for migration in marked:
                    await recorder.record_applied(conn, database.app, migration.id, migration.checksum, None)
    finally:
        await conn.close()
    applied_keys = {version_key(tool, v) for v in versions}
    pending = [m for key, m in imported.items() if key not in applied_keys and m.id not in recorded]
    already = len(applied_keys) - len(marked)
    message = f"{database.name}: marked {len(marked)} migration(s) as applied from {tool}'s {TOOL_TABLES[tool]}"
    if already:
        message += f" ({already} were recorded already)"
    message += f"; {len(pending)} imported migration(s) pending" if pending else "; every imported migration applied"
    late = [m for m in pending if marked and order_key(m.id) < order_key(marked[-1].id)]
    if late:
        message += f", {len(late)} of them numbered before applied ones (migrate them with OUT_OF_ORDER=1)"
    say(message)
    return [m.id for m in marked]


async def _table_columns(conn: asyncpg.Connection, table: str) -> set[str] | None:
    """The columns of `table` as the search_path finds it, or None when there is no such table."""
    oid = await conn.fetchval("SELECT to_regclass($1)::oid", table)
    if oid is None:
        return None
    rows = await conn.fetch("SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0", oid)
    return {r["attname"] for r in rows}


async def _applied_by_tool(conn: asyncpg.Connection, database: Database, tool: str, imported: dict) -> list[str]:
    """The versions `tool` applied, in its order, as its own table records them."""
    table = TOOL_TABLES[tool]
    columns = await _table_columns(conn, table)
    where = f"{database.name}: {table}"
    if columns is None:
        raise UserError(
            f"{database.name} has no {table} table: {tool} has not migrated this database (or uses another table name)"
        )
    if tool == DBMATE:
        if "dirty" in columns:
            raise UserError(f"{where} has a dirty column: it is golang-migrate's; use FROM_TOOL=golang-migrate")
        return [r["version"] for r in await conn.fetch(f"SELECT version::text AS version FROM {table} ORDER BY 1")]
    if tool == GOLANG_MIGRATE:
        if "dirty" not in columns:
            raise UserError(f"{where} has no dirty column: it is not golang-migrate's (dbmate's? use FROM_TOOL=dbmate)")
        rows = await conn.fetch(f"SELECT version::bigint AS version, dirty::boolean AS dirty FROM {table}")
        if len(rows) > 1:
            raise UserError(f"{where} has {len(rows)} rows; golang-migrate keeps one: repair it with `migrate force`")
        if not rows:
            return []
        current, dirty = rows[0]["version"], rows[0]["dirty"]
        if dirty:
            raise UserError(
                f"{where} is dirty at version {current}: a migration failed midway. Fix the schema by hand, then "
                f"`migrate force <last good version>`, and baseline again"
            )
        if current < 0:  # `migrate force -1`: nothing applied
            return []
        if current not in imported:
            return [str(current)]  # reported as unknown by the caller
        return [str(key) for key in sorted(imported) if key <= current]
    if tool == NODE_PG_MIGRATE:
        return [r["name"] for r in await conn.fetch(f"SELECT name FROM {table} ORDER BY run_on, id")]
    return await _flyway_applied(conn, where, table, imported)


async def _flyway_applied(conn: asyncpg.Connection, where: str, table: str, imported: dict) -> list[str]:
    applied: dict[tuple, str] = {}
    rows = await conn.fetch(
        f"SELECT installed_rank, version, type, script, success FROM {table} ORDER BY installed_rank"
    )
    for row in rows:
        kind, version = row["type"], row["version"]
        if not row["success"]:
            raise UserError(
                f"{where} records a failed migration ({row['script']}): clean it up and run `flyway repair` first"
            )
        if kind == "SCHEMA":  # Flyway created the schema: not a migration
            continue
        if version is None:
            raise UserError(f"{where} lists the repeatable migration {row['script']}, which import does not bring over")
        key = flyway_version_key(version)
        if kind == "BASELINE":
            applied.update({k: ".".join(map(str, k)) for k in imported if k <= key})
            applied.pop(key, None)
            if key in imported:
                applied[key] = version
        elif kind == "SQL":
            applied[key] = version
        elif kind in ("UNDO_SQL", "DELETE"):
            applied.pop(key, None)
        else:
            raise UserError(f"{where} lists {row['script']} of type {kind}; only SQL migrations are imported")
    return [applied[key] for key in sorted(applied)]
