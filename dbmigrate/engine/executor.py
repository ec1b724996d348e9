"""The executor: plans and applies (or reverts) one database's migrations, under its lock.

A run is a short pipeline, each step one call down into the module that does that whole phase:
the plan, under the lock when there is work (planning.py); every migration of it loaded and
checked before the first one runs (preflight.py); each one run with its bookkeeping, timeouts and
retries (runner.py); then what the plan left is said. A dry run prints the SQL of the same plan
and changes nothing. `down` refuses while a later migration failed midway.

It works only through the migration interface (migration.py) and knows no kind of migration.
Everything it needs about the database arrives as a Target (target.py); what it has to say goes
to the current reporter (reporting.py). Invariant: nothing runs until every migration of the run
has loaded and passed its checks; nothing is applied outside the migration lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import planning, preflight
from dbmigrate.engine.files import order_key
from dbmigrate.engine.state import MigrationState, backwards_plan, find
from dbmigrate.engine.target import Target

if TYPE_CHECKING:  # loading a migration imports Piccolo and pglast; a no-op migrate never does
    from dbmigrate.engine.migration import Migration


async def migrate(
    target: Target, to: str | None = None, allow_out_of_order: bool = False, phase: str | None = None
) -> list[str]:
    """Apply pending migrations of `target` (up to `to`; PHASE=pre: the pre-deploy ones); return the IDs applied."""
    async with (
        target.connected("migrate") as conn,
        planning.planned(target, conn, to, allow_out_of_order, phase) as plan,
    ):
        if plan.files:  # the runner (and the failures it words) is imported only when there is work: start-up time
            from dbmigrate.engine import runner

            await runner.apply_all(target, conn, await preflight.checked(target, plan.files, conn), plan.state.failed)
    for line in plan.closing:
        say(line)
    return [m.id for m in plan.files]


async def rollback(target: Target, steps: int | None = None, to: str | None = None) -> list[str]:
    """Revert the last applied migration (or the last `steps`, or all after `to`); return the IDs."""
    from dbmigrate.engine import runner  # see migrate

    async with target.connected("down") as conn, planning.locked(target, conn) as state:
        plan = backwards_plan(state, steps, to)
        _refuse_stranding(target, state, plan)
        migrations = [await _revertible(target, state, m, conn) for m in plan]
        for migration in preflight.refuse_unsafe(target, migrations, conn):
            if migration.origin:
                say(f"{target.name}: reverting {migration.id} {migration.origin}")
            await runner.apply(target, conn, migration, backwards=True)
        if not plan:
            after = f" after {find(state.files, to, target.name).id}" if to else ""
            say(f"{target.name}: nothing to roll back{after}")
        return [m.id for m in migrations]


async def dry_run(
    target: Target, to: str | None = None, allow_out_of_order: bool = False, phase: str | None = None
) -> None:
    """Print the SQL `migrate` would run, changing nothing."""
    async with target.connected("dry-run") as conn:
        plan = await planning.plan_forwards(target, conn, to, allow_out_of_order, phase)
        await _print_sql(target, conn, [await preflight.load(m) for m in plan.files], backwards=False)


async def dry_run_down(target: Target, steps: int | None = None, to: str | None = None) -> None:
    """Print the SQL `down` would run, changing nothing."""
    async with target.connected("dry-run") as conn:
        state = await planning.read_state(target, conn)
        plan = [await _revertible(target, state, m, conn) for m in backwards_plan(state, steps, to)]
        await _print_sql(target, conn, plan, backwards=True)


async def _print_sql(target: Target, conn: asyncpg.Connection, plan: list[Migration], backwards: bool) -> None:
    preflight.refuse_unsafe(target, plan)
    if not plan:
        say(f"-- {target.name}: nothing to run")
    for migration in plan:
        say(f"-- {target.name}: {migration.id} ({'backwards' if backwards else 'forwards'})")
        say(await migration.preview(conn, backwards))


def _refuse_stranding(target: Target, state: MigrationState, plan: list) -> None:
    """Rolling back a migration while one numbered after it failed midway would leave that one's
    finished statements behind, on a schema they were not written for."""
    if not plan or not state.failed:
        return
    from dbmigrate.engine import failures  # see migrate

    earliest = min(order_key(m if isinstance(m, str) else m.id) for m in plan)
    later = sorted((f for f in state.failed.values() if order_key(f.id) > earliest), key=lambda f: order_key(f.id))
    if later:
        failed = later[0]
        what = "was interrupted" if failed.interrupted else "FAILED"
        progress = failures.incomplete_progress(failed.statements_done, failed.statements_total, failed.last_statement)
        reverting = ", ".join(m if isinstance(m, str) else m.id for m in plan)
        raise UserError(
            f"{target.name}: nothing was rolled back: {failed.id} {what} midway ({progress}), and rolling back "
            f"{reverting} would leave its finished statements behind. Finish it first (fix it and migrate: it resumes "
            f"where it stopped), or undo its finished statements by hand and `make db-migrate-repair DB={target.name}`"
            ", then roll back"
        )


async def _revertible(target: Target, state: MigrationState, migration, conn: asyncpg.Connection) -> Migration:
    """The loaded migration to revert (its stored down copy when its file is gone: stored_down.py),
    or a UserError saying why it cannot be."""
    if isinstance(migration, str):
        from dbmigrate.engine import stored_down  # imports Piccolo and pglast: only a down without the file needs them

        return await stored_down.revertible(target, migration, conn)
    if migration in state.modified:
        raise UserError(
            f"{target.name}: {migration.id} was modified after it was applied, so its backwards steps may not "
            "undo what ran; restore the file, or `make db-migrate-repair` if the change is deliberate"
        )
    loaded = await preflight.load(migration)
    if not loaded.reversible:
        raise UserError(
            f"{target.name}: migration {migration.id} cannot be rolled back: {loaded.irreversible_reason} "
            f"({migration.shown}); nothing was rolled back. Write a new migration "
            "that undoes it instead"
        )
    return loaded
