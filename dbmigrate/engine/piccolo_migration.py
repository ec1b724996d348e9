"""PiccoloOperations: an ordinary Piccolo migration (operations and raw Python steps) as the
executor sees it, run by Piccolo's own MigrationManager on the connection that holds the
migration lock (piccolo_engine.pinned), inside the transaction that also records it. Its DDL is
only known by asking Piccolo to preview it: on the locked connection, or with no database at all
(piccolo_engine.offline, for `make db-migrate-sql`).

Backwards, it restores exactly what forwards removed: Piccolo's backwards of `drop_column` adds
the column back but not its index (migration_manager._run_drop_columns), so the index is made
again here, as Piccolo makes it for a column with `index=True`.

Its down copy (what the bookkeeping keeps so `down` needs no file) is that same offline preview,
backwards: the DDL Piccolo renders for the reverse of its operations; none when it has raw Python
steps (their SQL is only known when they run) or the rendering needed the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import DownCopy, LintSource, Migration, MigrationOptions, StatementHooks
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

    async def run(self, conn: asyncpg.Connection, backwards: bool, hooks: StatementHooks | None = None) -> None:
        with pinned(conn), piccolo_prints():
            await self.manager.run(backwards=backwards)
            if backwards:
                await self._restore_dropped_column_indexes()

    async def _restore_dropped_column_indexes(self) -> None:
        """The index of each column drop_column removed, as the schema before this migration had it."""
        for dropped in self.manager.drop_columns.drop_columns:
            table = await self.manager.get_table_from_snapshot(
                table_class_name=dropped.table_class_name, app_name=self.manager.app_name, offset=-1
            )
            column = table._meta.get_column_by_name(dropped.column_name)
            if column._meta.index:
                await self.manager._run_query(table.create_index([column], method=column._meta.index_method))

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
                    if backwards:
                        await self._restore_dropped_column_indexes()
            else:
                transaction = conn.transaction(readonly=True)
                await transaction.start()
                try:
                    with pinned(conn), piccolo_prints() as printed:
                        await self.manager.run(backwards=backwards)
                        if backwards:
                            await self._restore_dropped_column_indexes()
                finally:
                    await transaction.rollback()
        finally:
            self.manager.preview = False
        # Drop Piccolo's progress line ("  - 002_x [preview forwards]... ") and the space it prints
        # before each DDL statement; one blank line between statements.
        lines = [line.strip() for line in printed.getvalue().splitlines() if "[preview " not in line]
        lines = [line for i, line in enumerate(lines) if line or (i > 0 and lines[i - 1])]
        return "\n".join(notes + lines).strip() + "\n"

    async def render_down_copy(self) -> DownCopy | None:
        self.down_copy = None
        if self.reversible and not self.manager.raw_backwards:
            try:
                self.down_copy = DownCopy(await self.preview(None, backwards=True), self.transactional)
            except Exception:  # the rendering needed the database: no copy, and `down` needs the file
                self.down_copy = None
        return self.down_copy

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
