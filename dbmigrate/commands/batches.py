"""pause and resume: stop a staged migration's batches after the current one, or let them go on.

`make db-migrate-pause DB=orion ID=004` sets the flag in the migration's progress row
(engine/progress.py) from a connection of its own, without the migration lock (the runner holds
it): the runner reads the flag in each batch's transaction, stops after that batch commits, and
its migrate fails saying it is paused; a migrate started later stops before its first batch.
`make db-migrate-resume DB=orion ID=004` clears it; the next migrate resumes at the cursor.
"""

from __future__ import annotations

from dbmigrate.commands.common import resolve
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import planning, preflight, progress
from dbmigrate.engine.state import find


async def pause(settings: Settings, database: Database, migration_id: str | None, paused: bool) -> None:
    """Set (or clear) the pause flag of staged migration `migration_id` of `database`."""
    verb = "pause" if paused else "resume"
    if not (migration_id or "").strip():
        raise UsageError(f"{verb} needs ID, the staged migration to {verb}: e.g. make db-migrate-{verb} ID=004")
    (target,) = await resolve(settings, [database])
    migration = find(list(target.files), migration_id.strip(), target.name)
    async with target.connected(verb) as conn:
        state = await planning.read_state(target, conn)
        if migration.id in state.applied:
            raise UserError(f"{target.name}: {migration.id} is applied: it has finished, there is nothing to {verb}")
        loaded = await preflight.load(migration)
        if not loaded.staged:
            raise UsageError(
                f"{target.name}: {migration.id} is not a staged migration (StagedMigration): only those run in "
                "batches that can pause"
            )
        row = await progress.set_paused(conn, target.database.app, migration.id, paused)
    done = f"{row.rows_done:,} of {row.rows_total:,} rows done" if row.rows_total is not None else "not started yet"
    if paused:
        say(
            f"{target.name}: {migration.id} pauses after its current batch ({done}); "
            f"`make db-migrate-resume DB={target.name} ID={migration.id}` lets it go on"
        )
    else:
        say(f"{target.name}: {migration.id} may go on ({done}): `make db-migrate DB={target.name}` resumes it")
