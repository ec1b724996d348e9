"""repair and baseline (Flyway's): the commands that change only the bookkeeping, never the schema.

Both run under the migration lock, in one transaction, through the recorder.
"""

from __future__ import annotations

from dbmigrate.commands.common import NO_OPTIONS, Options, guard, resolve
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import leftovers, recorder
from dbmigrate.engine.files import order_key
from dbmigrate.engine.planning import locked
from dbmigrate.engine.state import find
from dbmigrate.engine.target import Target


async def repair_target(target: Target) -> list[str]:
    """Accept the files as they are now: record current checksums, forget failures and vanished files."""
    app = target.database.app
    changes: list[str] = []
    async with target.connected("repair") as conn, locked(target, conn) as state, conn.transaction():
        for migration in state.modified + state.unverified:
            await recorder.record_checksum(conn, app, migration.id, migration.checksum)
            changes.append(f"recorded the current checksum of {migration.id}")
        for migration_id in state.missing:
            await recorder.record_file_removed(conn, app, migration_id)
            changes.append(f"accepted that the file of applied migration {migration_id} is gone")
        for migration_id, unfinished in state.failed.items():
            await recorder.forget_failure(conn, app, migration_id)
            what = "interruption" if unfinished.interrupted else "failure"
            left = await _left_invalid(conn, unfinished.building)
            stays = f"; the INVALID index {left} it left stays, and its next run drops it first" if left else ""
            changes.append(f"cleared the {what} of {migration_id} (it is still not applied){stays}")
    for change in changes or ["nothing to repair"]:
        say(f"{target.name}: {change}")
    return changes


async def _left_invalid(conn, building: str | None) -> str:
    build = leftovers.IndexBuild.from_record(building)
    if build is None:
        return ""
    return ", ".join(i.qualified for i in await leftovers.invalid_indexes(conn, build) if leftovers.left_by(build, i))


async def baseline_target(target: Target, to: str) -> list[str]:
    """Mark migrations up to `to` as applied without running them, on a database with none recorded."""
    async with target.connected("baseline") as conn, locked(target, conn) as state:
        chosen = find(state.files, to, target.name)
        if state.applied:
            raise UserError(
                f"{target.name}: already has applied migrations (last {state.last_applied}); "
                "baseline is only for a database that predates the framework"
            )
        marked = [m for m in state.files if order_key(m.id) <= order_key(chosen.id)]
        async with conn.transaction():
            for migration in marked:
                await recorder.record_applied(conn, target.database.app, migration.id, migration.checksum, None)
    say(f"{target.name}: marked {len(marked)} migration(s) as applied without running them, up to {chosen.id}")
    return [m.id for m in marked]


async def repair(settings: Settings, databases: list[Database], options: Options = NO_OPTIONS) -> None:
    guard(settings, "repair", databases, options.confirm)
    for target in await resolve(settings, databases):
        await repair_target(target)


async def baseline(settings: Settings, database: Database, options: Options = NO_OPTIONS) -> None:
    if not options.to:
        raise UsageError("baseline needs TO, the last migration the database already has (e.g. TO=003)")
    guard(settings, "baseline", [database], options.confirm)
    (target,) = await resolve(settings, [database])
    await baseline_target(target, options.to)
