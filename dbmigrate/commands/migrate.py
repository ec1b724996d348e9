"""migrate and down: apply pending migrations, or roll the last ones back (the story's db:migrate
and db:migrate:down); their dry runs (DRY_RUN=1, commands of their own) print the SQL and change
nothing.

Thin over the engine's executor: each command resolves its targets once (common.resolve) and hands
each to `executor.migrate`, `executor.rollback`, `executor.dry_run` or `executor.dry_run_down`. A
migrate whose database a reset dropped under it (the reset's DROP ... WITH (FORCE) ends its
connection) waits for that reset to end and migrates again what the reset made (server/resets.py):
it never fails because of it.
"""

from __future__ import annotations

from dbmigrate.commands.common import NO_OPTIONS, Options, each, guard, one_database_for_target, resolve
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.reporting import say
from dbmigrate.engine import executor
from dbmigrate.engine.target import Target
from dbmigrate.server import resets


async def migrate(settings: Settings, databases: list[Database], options: Options = NO_OPTIONS) -> None:
    """Apply pending migrations; several databases migrate concurrently."""
    one_database_for_target(databases, options)
    targets = await resolve(settings, databases)
    await each(targets, lambda target: migrate_through_resets(target, options.to, options.out_of_order, options.phase))


async def dry_run(settings: Settings, databases: list[Database], options: Options = NO_OPTIONS) -> None:
    """Print the SQL `migrate` would run on each database, one after the other, changing nothing."""
    one_database_for_target(databases, options)
    for target in await resolve(settings, databases):
        await executor.dry_run(target, options.to, options.out_of_order, options.phase)


async def migrate_through_resets(
    target: Target, to: str | None = None, out_of_order: bool = False, phase: str | None = None
) -> list[str]:
    """`executor.migrate`, once more after a reset that dropped the database under it has ended."""
    waited = False  # for a reset: once, then a failure is the migration's own
    while True:
        try:
            return await executor.migrate(target, to, out_of_order, phase)
        except Exception:  # a connection the server ended mid-operation fails in many ways (asyncpg's own too)
            if waited or not await resets.wait_for_reset(target, target.url):
                raise  # no reset under way: the failure is the migration's own
        waited = True
        say(f"{target.name}: a reset dropped and rebuilt the database while this run migrated it; migrating again")


async def down(settings: Settings, database: Database, options: Options = NO_OPTIONS) -> None:
    """Roll back the last applied migration of one database (or STEPS of them, or back to TO)."""
    (target,) = await resolve(settings, [database])
    guard(settings, "down", [database], options.confirm)
    await executor.rollback(target, options.steps, options.to)


async def dry_run_down(settings: Settings, database: Database, options: Options = NO_OPTIONS) -> None:
    """Print the SQL `down` would run, changing nothing."""
    (target,) = await resolve(settings, [database])
    await executor.dry_run_down(target, options.steps, options.to)
