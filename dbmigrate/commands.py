"""Commands: one short coroutine per user-facing command, as in Alembic's command.py.

Each takes the settings and the databases it applies to and hands over to the executor, the
loader or the connection layer. The CLI, the noxfile and the Makefile only call these.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from dbmigrate import connection, embedded, executor, loader
from dbmigrate.config import Database, Settings
from dbmigrate.errors import UsageError, UserError
from dbmigrate.output import say
from dbmigrate.urls import redact

MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


async def migrate(settings: Settings, databases: list[Database]) -> None:
    """Apply pending migrations; several databases migrate concurrently."""
    await connection.prepare(settings)
    await _each(databases, lambda db: executor.migrate(settings, db))


async def down(settings: Settings, database: Database) -> None:
    """Roll back the last applied migration of one database."""
    await connection.prepare(settings)
    await executor.rollback_last(settings, database)


async def status(settings: Settings, databases: list[Database]) -> None:
    """Show, per database, which migrations are applied and which are pending."""
    await connection.prepare(settings)
    for database in databases:
        async with executor.connected(settings, database, f"status {database.name}") as conn:
            state = await executor.read_state(settings, database, conn)
        _print_status(settings, database, state)


async def create_databases(settings: Settings, databases: list[Database]) -> None:
    await connection.prepare(settings)
    created = await connection.create_missing_databases(settings, databases)
    say(f"created {', '.join(created)}" if created else "every database already exists")


async def drop_databases(settings: Settings, databases: list[Database]) -> None:
    await connection.prepare(settings)
    dropped = await connection.drop_databases(settings, databases)
    say(f"dropped {', '.join(dropped)}" if dropped else "no database to drop")


def stop_embedded(settings: Settings) -> None:
    stopped = embedded.stop(settings.embedded_data_dir)
    say("stopped the embedded PostgreSQL server" if stopped else "the embedded server is not running")


async def create(settings: Settings, database: Database, name: str, auto: bool) -> Path | None:
    """Write the next numbered migration of `database`; None when `auto` finds no change."""
    if not MIGRATION_NAME.match(name):
        raise UsageError(
            f"migration name {name!r} is not usable: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. add_order_limits)"
        )
    files = loader.discover(settings.project_root, database)
    number = max((m.number or 0 for m in files), default=0) + 1
    migration_id = f"{number:03d}_{name}"
    folder = loader.migrations_folder(settings.project_root, database)
    path = folder / f"{database.app}_{migration_id}.py"
    from dbmigrate.templates import auto_migration_source, sql_migration_source

    if auto:
        source = await auto_migration_source(database.app, migration_id, name)
        if source is None:
            say(f"{database.name}: no changes detected in {database.app}/tables.py; no migration written")
            return None
    else:
        source = sql_migration_source(database.app, migration_id, name)
    path.write_text(source, encoding="utf-8")
    say(f"{database.name}: created {path.relative_to(settings.project_root)}")
    return path


def _print_status(settings: Settings, database: Database, state: executor.MigrationState) -> None:
    url = redact(connection.url_for(settings, database))
    say(f"{database.name} ({url})")
    for migration in state.files:
        applied_on = state.applied.get(migration.id)
        if migration.id in state.applied:
            when = applied_on.strftime("%Y-%m-%d %H:%M:%S") if applied_on else "unknown time"
            say(f"  [x] {migration.id:<40} applied {when}")
        else:
            say(f"  [ ] {migration.id:<40} pending")
    for missing in state.missing_files:
        say(f"  [!] {missing:<40} applied, but its file is missing")
    summary = f"{len(state.applied)} applied, {len(state.pending)} pending"
    if state.missing_files:
        summary += f", {len(state.missing_files)} missing"
    say(f"  {summary}")


async def _each(databases: list[Database], work) -> None:
    """Run `work(db)` for every database concurrently; report every failure, then fail once."""
    results = await asyncio.gather(*(work(db) for db in databases), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, UserError):
            raise failure
    if len(failures) == 1:
        raise failures[0]
    if failures:
        for failure in failures[:-1]:
            print(f"error: {failure}", file=sys.stderr)
        raise failures[-1]
