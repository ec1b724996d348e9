"""PiccoloOperations: an ordinary Piccolo migration (operations and raw Python steps) as the
executor sees it, run by Piccolo's own MigrationManager on the connection that holds the
migration lock (piccolo_engine.pinned), inside the transaction that also records it. Its DDL is
only known by asking Piccolo to preview it: on the locked connection, or with no database at all
(piccolo_engine.offline, for `make db-migrate-sql`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import LintSource, Migration, MigrationOptions, StatementDone
from dbmigrate.engine.piccolo_engine import framework_engine, offline, piccolo_prints, pinned


class PiccoloOperations(Migration):
    """An ordinary Piccolo migration: operations and raw Python steps, run by Piccolo's manager on
    the locked connection (piccolo_engine.pinned)."""

    def __init__(self, file: MigrationFile, options: MigrationOptions, manager: MigrationManager) -> None:
        super().__init__(file, options)
        self.manager = manager

    @property
    def transactional(self) -> bool:
        return self.manager.wrap_in_transaction

    def statements(self, backwards: bool = False) -> None:
        return None  # Piccolo builds its DDL as it runs, and raw steps are Python

    @property
    def irreversible_reason(self) -> str | None:
        # Piccolo runs raw forwards steps with no raw backwards steps as "nothing to undo".
        if self.manager.raw and not self.manager.raw_backwards:
            return "it has raw forwards steps and no raw backwards steps"
        return None

    def problems(self) -> list[str]:
        if _operation_count(self.manager) == 0 and not self.manager.raw:
            return ["it has no operations and no raw steps (an unfilled `piccolo migrations new` stub?)"]
        return []

    @contextlib.asynccontextmanager
    async def transaction(self, conn: asyncpg.Connection, prelude: str) -> AsyncIterator[None]:
        # The engine's transaction, routed to `conn`, so the one Piccolo opens in run() nests into
        # it and commits with the bookkeeping.
        with pinned(conn):
            async with framework_engine().transaction():
                await conn.execute(prelude)
                yield

    async def run(self, conn: asyncpg.Connection, backwards: bool, done: StatementDone | None = None) -> None:
        with pinned(conn), piccolo_prints():
            await self.manager.run(backwards=backwards)

    async def preview(self, conn: asyncpg.Connection | None, backwards: bool) -> str:
        notes = [
            f"-- raw Python step {getattr(step, '__name__', step)!r}: its SQL is only known when it runs"
            for step in (self.manager.raw_backwards if backwards else self.manager.raw)
        ]
        self.manager.preview = True
        try:
            if conn is None:
                with offline(), piccolo_prints() as printed:
                    await self.manager.run(backwards=backwards)
            else:
                transaction = conn.transaction(readonly=True)
                await transaction.start()
                try:
                    with pinned(conn), piccolo_prints() as printed:
                        await self.manager.run(backwards=backwards)
                finally:
                    await transaction.rollback()
        finally:
            self.manager.preview = False
        # Drop Piccolo's progress line ("  - 002_x [preview forwards]... ") and the space it prints
        # before each DDL statement; one blank line between statements.
        lines = [line.strip() for line in printed.getvalue().splitlines() if "[preview " not in line]
        lines = [line for i, line in enumerate(lines) if line or (i > 0 and lines[i - 1])]
        return "\n".join(notes + lines).strip() + "\n"

    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        # Piccolo's DDL is only known by previewing it, which needs the connection.
        return [LintSource(await self.preview(conn, backwards=False), f"{self.id} (Piccolo's DDL)", 1)]


def _operation_count(manager: MigrationManager) -> int:
    """How many schema operations Piccolo's manager holds."""
    collections = {
        "add_tables": None,
        "drop_tables": None,
        "rename_tables": None,
        "change_table_schemas": None,
        "add_columns": "add_columns",
        "drop_columns": "drop_columns",
        "rename_columns": "rename_columns",
        "alter_columns": "alter_columns",
        "add_constraints": "add_constraints",
        "drop_constraints": "drop_constraints",
    }
    count = 0
    for name, inner in collections.items():
        value = getattr(manager, name, None)
        items = getattr(value, inner, None) if inner else value
        count += len(items or ())
    return count
