"""The executor: applies or reverts one database's migrations, under its lock, one transaction each.

For every migration, the schema change and its bookkeeping row commit together or not at all
(see recorder.py). Before taking the lock, a read-only look at the bookkeeping table answers the
common case, "nothing to do", without importing Piccolo or queueing behind another runner.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate import connection, loader, recorder
from dbmigrate.config import Database, Settings
from dbmigrate.errors import UserError
from dbmigrate.lock import migration_lock
from dbmigrate.output import piccolo_silenced, say
from dbmigrate.urls import redact

if TYPE_CHECKING:
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

    from dbmigrate.loader import MigrationFile


@dataclass(frozen=True)
class MigrationState:
    """What one database has applied, against what its migrations folder holds."""

    files: list[MigrationFile]
    applied: dict  # ID -> when applied

    @property
    def pending(self) -> list[MigrationFile]:
        return [m for m in self.files if m.id not in self.applied]

    @property
    def missing_files(self) -> list[str]:
        on_disk = {m.id for m in self.files}
        return [i for i in self.applied if i not in on_disk]


@asynccontextmanager
async def connected(settings: Settings, database: Database, purpose: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connection.connect(settings, connection.url_for(settings, database), purpose)
    try:
        yield conn
    finally:
        if not conn.is_closed():
            await conn.close()


async def read_state(settings: Settings, database: Database, conn: asyncpg.Connection) -> MigrationState:
    files = loader.discover(settings.project_root, database)
    return MigrationState(files=files, applied=await recorder.applied(conn, database.app))


async def migrate(settings: Settings, database: Database) -> list[str]:
    """Apply every pending migration of `database`; return the IDs applied."""
    async with connected(settings, database, f"migrate {database.name}") as conn:
        if not (await read_state(settings, database, conn)).pending:
            say(f"{database.name}: up to date, nothing to migrate")
            return []
        async with migration_lock(conn, database.name, settings.lock_wait_seconds):
            await recorder.ensure_table(conn)
            # Read again under the lock: a runner we waited for may have applied everything.
            state = await read_state(settings, database, conn)
            applied: list[str] = []
            for migration in state.pending:
                await _apply(settings, database, conn, migration, backwards=False)
                applied.append(migration.id)
    if not applied:
        say(f"{database.name}: up to date, nothing to migrate")
    return applied


async def rollback_last(settings: Settings, database: Database) -> str | None:
    """Revert the last applied migration of `database`; return its ID (None when none is applied)."""
    async with (
        connected(settings, database, f"down {database.name}") as conn,
        migration_lock(conn, database.name, settings.lock_wait_seconds),
    ):
        state = await read_state(settings, database, conn)
        if not state.applied:
            raise UserError(f"{database.name}: no migration is applied, nothing to roll back")
        last_id = max(state.applied)
        migration = next((m for m in state.files if m.id == last_id), None)
        if migration is None:
            folder = loader.migrations_folder(settings.project_root, database)
            raise UserError(
                f"{database.name}: the last applied migration {last_id} has no file in "
                f"{folder.relative_to(settings.project_root)}; restore it before rolling back"
            )
        await _apply(settings, database, conn, migration, backwards=True)
        return last_id


async def _apply(
    settings: Settings,
    database: Database,
    conn: asyncpg.Connection,
    migration: MigrationFile,
    backwards: bool,
) -> None:
    manager = await loader.load_manager(migration, settings.project_root)
    if backwards:
        _refuse_irreversible(database, migration, manager, settings.project_root)
    from dbmigrate.piccolo_engine import framework_engine, pinned

    engine = framework_engine()
    verb = "reverted" if backwards else "applied"
    started = time.perf_counter()
    try:
        with pinned(conn), piccolo_silenced():
            if manager.wrap_in_transaction:
                # Piccolo's own transaction in run() nests into this one (a no-op), so the
                # bookkeeping row commits with the schema change.
                async with engine.transaction():
                    await _run_and_record(conn, database, migration, manager, backwards)
            else:
                await _run_and_record(conn, database, migration, manager, backwards)
    except UserError:
        raise
    except Exception as error:
        raise _failure(database, migration, manager, backwards, error) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    say(f"{database.name}: {verb} {migration.id} ({elapsed_ms:.0f} ms)")


async def _run_and_record(
    conn: asyncpg.Connection,
    database: Database,
    migration: MigrationFile,
    manager: MigrationManager,
    backwards: bool,
) -> None:
    await manager.run(backwards=backwards)
    if backwards:
        await recorder.record_unapplied(conn, database.app, migration.id)
    else:
        await recorder.record_applied(conn, database.app, migration.id)


def is_reversible(manager: MigrationManager) -> bool:
    """False when running backwards would not undo what forwards did."""
    from dbmigrate.sql import SQLMigration

    if isinstance(manager, SQLMigration):
        return not manager.irreversible
    # Piccolo runs raw forwards steps with no raw backwards steps as "nothing to undo".
    return not (manager.raw and not manager.raw_backwards)


def _refuse_irreversible(database: Database, migration: MigrationFile, manager: MigrationManager, root: Path) -> None:
    if not is_reversible(manager):
        raise UserError(
            f"{database.name}: migration {migration.id} cannot be rolled back: it has no backwards "
            f"steps ({migration.relative_path(root)}); write a new migration that undoes it instead"
        )


def _failure(
    database: Database,
    migration: MigrationFile,
    manager: MigrationManager,
    backwards: bool,
    error: Exception,
) -> UserError:
    direction = "rolling back" if backwards else "applying"
    message = _error_text(error)
    if isinstance(error, (asyncpg.ConnectionDoesNotExistError, ConnectionError, OSError)):
        return UserError(
            f"{database.name}: lost the connection while {direction} {migration.id} ({message}); "
            "its transaction did not commit: run the command again when the server is back"
        )
    if manager.wrap_in_transaction:
        outcome = "rolled back; no later migration ran"
    else:
        outcome = "NOT transactional, so it may be partly applied and is not recorded"
    return UserError(f"{database.name}: {direction} {migration.id} failed and was {outcome}: {message}")


def _error_text(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, asyncpg.PostgresError):
        text = f"{type(error).__name__}: {text}"
    return redact(text)
