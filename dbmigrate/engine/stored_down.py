"""Down without the file: a migration reverted from the copy of its down kept when it was applied.

When a migration is applied, the recorder keeps beside its row what `down` runs, rendered as SQL
by its kind (Migration.render_down_copy): an SQL migration's backwards statements, the DDL
Piccolo's preview renders for the reverse of its operations, a staged migration's backwards stages;
nothing for a raw Python step, whose SQL is only known when it runs. After a branch switch the
file is gone, and `down` reverts the migration from that copy: `StoredDown` is that copy as the
executor sees it (the Migration interface), an SQL migration whose backwards SQL is the copy, run
in a transaction or statement by statement as the migration was. Reverting one in a transaction
also forgets a staged migration's progress row, as a staged migration's own revert does.

Invariant: a copy is only read for a migration whose file is missing; a migration whose file exists
is always reverted from its file.
"""

from __future__ import annotations

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine import files, progress
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import DownCopy, MigrationOptions, StatementHooks
from dbmigrate.engine.sql_migration import SQLMigration, SQLSteps
from dbmigrate.engine.target import Target

FROM_THE_COPY = "from the copy stored when it was applied"


async def revertible(target: Target, migration_id: str, conn: asyncpg.Connection) -> StoredDown:
    """Applied `migration_id`, whose file is gone, as its stored copy; a UserError when none was kept."""
    folder = files.migrations_folder(target.project_root, target.database)
    copy = await down_copy(conn, target.database.app, migration_id)
    if copy is None:
        raise UserError(
            f"{target.name}: applied migration {migration_id} has no file in {folder.relative_to(target.project_root)} "
            "and no copy of its down was stored when it was applied (an older dbmigrate applied it, or it has raw "
            "Python steps): check out the branch that has it and roll it back there; nothing was rolled back"
        )
    path = folder / f"{target.database.app}_{migration_id}.py"
    shown = files.shown_path(path, target.project_root)
    return StoredDown(MigrationFile(target.database.app, migration_id, path, "", shown=shown), copy)


async def down_copy(conn: asyncpg.Connection, app: str, migration_id: str) -> DownCopy | None:
    """The copy of what `down` runs kept when `migration_id` was applied; None when none was (an
    older dbmigrate applied it, or it could not be rendered as SQL)."""
    try:
        row = await conn.fetchrow(
            "SELECT down_sql, down_transactional FROM public.dbmigrate_history "
            "WHERE app_name = $1 AND migration_id = $2 AND state = 'applied' AND down_sql IS NOT NULL",
            app,
            migration_id,
        )
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):  # bookkeeping from before copies were kept
        return None
    return DownCopy(row["down_sql"], bool(row["down_transactional"])) if row else None


class StoredDown(SQLSteps):
    """A migration whose file is gone, as its stored down copy: it only runs backwards."""

    def __init__(self, file: MigrationFile, copy: DownCopy) -> None:
        manager = SQLMigration(migration_id=file.id, app_name=file.app, wrap_in_transaction=copy.transactional)
        manager.sql("", copy.sql, empty_forwards=True)
        super().__init__(file, MigrationOptions(), manager)
        self.origin = f"{FROM_THE_COPY} (its file is not here)"

    async def run(self, conn: asyncpg.Connection, backwards: bool, hooks: StatementHooks | None = None) -> None:
        if not backwards:
            raise RuntimeError(f"{self.id} has no file: only its down was stored")
        await super().run(conn, True, hooks)
        if self.transactional:  # a staged migration's progress row goes with it (staged.finish)
            await progress.forget(conn, self.file.app, self.id)

    def one_query(self, backwards: bool) -> str | None:
        return None  # run() does more than its SQL: it forgets a staged migration's progress

    async def preview(self, conn: asyncpg.Connection | None, backwards: bool) -> str:
        return f"-- {self.id}: {FROM_THE_COPY} (its file is not here)\n" + await super().preview(conn, backwards)

    async def render_down_copy(self) -> DownCopy | None:
        return None  # never applied from here
