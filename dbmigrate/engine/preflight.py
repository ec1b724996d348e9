"""Preflight: every migration a run will apply, loaded and checked before the first one runs.

Invariant: an unfilled file, a syntax error, a migration's own problem (Migration.problems) or a
non-transactional migration through a pooler in transaction mode stops the run here, with nothing
changed. Loading imports Piccolo and pglast, so the loader is imported only when a run has
something to load: a no-op migrate never does (start-up time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine.target import Target
from dbmigrate.server import pooling

if TYPE_CHECKING:  # loading a migration imports Piccolo and pglast; a no-op migrate never does
    from dbmigrate.engine.files import MigrationFile
    from dbmigrate.engine.migration import Migration


async def checked(target: Target, plan: list[MigrationFile], conn: asyncpg.Connection | None = None) -> list[Migration]:
    """Every migration of `plan`, loaded, once none is unsafe to run (`refuse_unsafe`)."""
    return refuse_unsafe(target, [await load(m) for m in plan], conn)


async def load(migration: MigrationFile) -> Migration:
    """Import and build one migration. The loader is imported here rather than at the top because
    it imports Piccolo and pglast, which a no-op migrate never needs (start-up time)."""
    from dbmigrate.engine import loader

    return await loader.load(migration)


def refuse_unsafe(target: Target, migrations: list[Migration], conn: asyncpg.Connection | None = None) -> list:
    """`migrations`, once none is unsafe to run; else a UserError before anything runs: a
    migration's own problems, or (given the connection it would run on) a non-transactional
    migration through a pooler in transaction mode."""
    for migration in migrations:
        problems = migration.problems()
        if problems:
            where = migration.file.shown
            raise UserError(f"{target.name}: {migration.id} ({where}) was not run: {problems[0]}")
        if conn is not None and not migration.transactional and not migration.staged:
            _refuse_non_transactional(conn, target.name, migration.id)
    return migrations


def _refuse_non_transactional(conn: asyncpg.Connection, database: str, migration_id: str) -> None:
    """A non-transactional migration cannot run through transaction pooling: each of its
    statements could land on a different server connection (and its progress trail with them)."""
    if pooling.is_pooled(conn):
        raise UserError(
            f"{database}: {migration_id} is not transactional, and this connection goes through a pooler in "
            "transaction mode (PgBouncer), where each of its statements could run on a different server "
            "connection; nothing of it ran. Run it over a direct connection to PostgreSQL (or set "
            "ORION_POOLER=session if the pooler runs in session mode)"
        )
