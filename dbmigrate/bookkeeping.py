"""Commands that change only the bookkeeping, never the schema: repair and baseline (Flyway's).

Both run under the migration lock, in one transaction, through the recorder.
"""

from __future__ import annotations

from dbmigrate import recorder
from dbmigrate.errors import UserError
from dbmigrate.executor import locked
from dbmigrate.reporting import say
from dbmigrate.state import find
from dbmigrate.target import Target


async def repair(target: Target) -> list[str]:
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
            changes.append(f"cleared the {what} of {migration_id} (it is still not applied)")
    for change in changes or ["nothing to repair"]:
        say(f"{target.name}: {change}")
    return changes


async def baseline(target: Target, to: str) -> list[str]:
    """Mark migrations up to `to` as applied without running them, on a database with none recorded."""
    async with target.connected("baseline") as conn, locked(target, conn) as state:
        chosen = find(state.files, to, target.name)
        if state.applied:
            raise UserError(
                f"{target.name}: already has applied migrations (last {max(state.applied)}); "
                "baseline is only for a database that predates the framework"
            )
        marked = [m for m in state.files if m.id <= chosen.id]
        async with conn.transaction():
            for migration in marked:
                await recorder.record_applied(conn, target.database.app, migration.id, migration.checksum, None)
    say(f"{target.name}: marked {len(marked)} migration(s) as applied without running them, up to {chosen.id}")
    return [m.id for m in marked]
