"""sql (`make db-migrate-sql ID=003 [DB=] [DOWN=1]`): a migration's SQL, printed with no database,
as Django's sqlmigrate and Alembic's --sql do.

An SQL migration prints its statements as PostgreSQL's parser splits them (what runs); Piccolo
operations print the DDL Piccolo's own preview renders for them, with an engine that never
connects (piccolo_engine.offline); a raw Python step says that its SQL is only known when it runs.
The first line says whether the migration runs in one transaction. Nothing connects, so this works
on a laptop with no server, on a migration applied or not.
"""

from __future__ import annotations

from dbmigrate.commands.common import named
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import files


async def show_sql(settings: Settings, database: Database, migration_id: str, backwards: bool = False) -> None:
    """Print the SQL that migrating (or, `backwards`, rolling back) `migration_id` runs."""
    from dbmigrate.engine import loader  # imports Piccolo and PostgreSQL's parser: only this command needs them
    from dbmigrate.engine.statements import SQLSyntaxError

    root = settings.project_root
    chosen = named(files.discover(root, database, shared_numbers=True), migration_id, database.name)
    migration = await loader.load(chosen)
    where = chosen.shown
    if backwards and not migration.reversible:
        raise UserError(
            f"{database.name}: {chosen.id} cannot be rolled back: {migration.irreversible_reason} ({where})"
        )
    try:
        sql = await migration.preview(None, backwards)
    except SQLSyntaxError as error:
        raise UserError(f"{database.name}: {chosen.id} ({where}): its SQL does not parse: {error}") from None
    direction = "rolled back" if backwards else "applied"
    how = "in one transaction" if migration.transactional else "not in a transaction: each statement commits alone"
    say(f"-- {database.name} {chosen.id} ({where}), {direction} {how}:")
    say(sql.rstrip("\n") if sql.strip() else "-- (no statements)")
