"""Commands: one short coroutine per user-facing command, as in Alembic's command.py.

Each takes the settings and the databases it applies to and hands over to the executor, the
loader or the connection layer. The CLI, the noxfile and the Makefile only call these.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dbmigrate import bookkeeping, connection, embedded, executor, loader, seeder, status_report
from dbmigrate.config import Database, Settings
from dbmigrate.errors import UsageError, UserError
from dbmigrate.reporting import say
from dbmigrate.target import Target
from dbmigrate.urls import database_name

MAX_MIGRATION_NAME = 60
MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
GUARDED_ENVIRONMENTS = ("production",)


@dataclass(frozen=True)
class Options:
    """What the command line adds to a command: targets, dry runs, confirmations, output format."""

    to: str | None = None
    steps: int | None = None
    dry_run: bool = False
    out_of_order: bool = False
    confirm: str | None = None
    check: bool = False
    json: bool = False


async def migrate(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    """Apply pending migrations; several databases migrate concurrently."""
    _one_database_for_target(databases, options)
    targets = await resolve(settings, databases)
    if options.dry_run:
        for target in targets:
            await executor.dry_run(target, False, options.to, None, options.out_of_order)
        return
    await _each(targets, lambda target: executor.migrate(target, options.to, options.out_of_order))


async def resolve(settings: Settings, databases: list[Database]) -> list[Target]:
    """The edge: ready the server, then resolve each database's target once for the whole command."""
    await connection.prepare(settings, databases)
    return [Target.resolve(settings, database) for database in databases]


async def down(settings: Settings, database: Database, options: Options = Options()) -> None:
    """Roll back the last applied migration of one database (or STEPS of them, or back to TO)."""
    (target,) = await resolve(settings, [database])
    if options.dry_run:
        await executor.dry_run(target, True, options.to, options.steps)
        return
    guard(settings, "down", [database], options.confirm)
    await executor.rollback(target, options.steps, options.to)


async def status(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    """Show, per database, what is applied, pending, modified, missing, failed or incomplete.

    An unreachable database is reported with its error (and fails the command) after the others.
    """
    await connection.prepare(settings, databases)
    reports = await asyncio.gather(*(status_report.report(settings, database) for database in databases))
    if options.json:
        say(status_report.to_json(reports))
    else:
        for report in reports:
            for line in status_report.text_lines(report):
                say(line)
    unreachable = [r for r in reports if r["error"]]
    if unreachable:
        raise UserError(unreachable[-1]["error"])
    if options.check:
        problems = [f"{r['database']}: {status_report.summary(r)}" for r in reports if not r["ok"]]
        if problems:
            raise UserError("; ".join(problems))


async def repair(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    guard(settings, "repair", databases, options.confirm)
    for target in await resolve(settings, databases):
        await bookkeeping.repair(target)


async def baseline(settings: Settings, database: Database, options: Options = Options()) -> None:
    if not options.to:
        raise UsageError("baseline needs TO, the last migration the database already has (e.g. TO=003)")
    guard(settings, "baseline", [database], options.confirm)
    (target,) = await resolve(settings, [database])
    await bookkeeping.baseline(target, options.to)


async def create_databases(settings: Settings, databases: list[Database]) -> None:
    await connection.prepare(settings, databases)
    created = await connection.create_missing_databases(settings, databases)
    say(f"created {', '.join(created)}" if created else "every database already exists")


async def drop_databases(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    guard(settings, "drop", databases, options.confirm)
    await connection.prepare(settings, databases)
    dropped = await connection.drop_databases(settings, databases)
    say(f"dropped {', '.join(dropped)}" if dropped else "no database to drop")


def stop_embedded(settings: Settings) -> None:
    stopped = embedded.stop(settings.embedded_data_dir)
    say("stopped the embedded PostgreSQL server" if stopped else "the embedded server is not running")


async def create(
    settings: Settings, database: Database, name: str, auto: bool, transactional: bool = True
) -> Path | None:
    """Write the next numbered migration of `database`; None when `auto` finds no change."""
    if len(name) > MAX_MIGRATION_NAME:
        raise UsageError(
            f"migration name {name[:20]!r}... is {len(name)} characters long; the most is {MAX_MIGRATION_NAME} "
            "(Piccolo's bookkeeping keeps 200 for the whole ID): shorten it"
        )
    if not MIGRATION_NAME.match(name):
        raise UsageError(
            f"migration name {name!r} is not usable: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. add_order_limits)"
        )
    files = loader.discover(settings.project_root, database)
    number = max((m.number or 0 for m in files), default=0) + 1
    migration_id = f"{number:03d}_{name}"
    folder = loader.migrations_folder(settings.project_root, database)
    path = folder / f"{database.app}_{migration_id}.py"
    from dbmigrate.scaffold import auto_migration_source, sql_migration_source

    if auto:
        if not transactional:
            raise UsageError("AUTO=1 writes Piccolo operations, which run in a transaction: drop TRANSACTION=0")
        source = await auto_migration_source(database.app, migration_id, name, settings.project_root)
        if source is None:
            say(f"{database.name}: no changes detected in {database.app}/tables.py; no migration written")
            return None
    else:
        source = sql_migration_source(database.app, migration_id, name, transactional)
    path.write_text(source, encoding="utf-8")
    say(f"{database.name}: created {path.relative_to(settings.project_root)}")
    return path


async def verify(settings: Settings, databases: list[Database], base: str | None, lint: str = "all") -> None:
    """Prove each database's migrations on a scratch copy (verify.py); fail if any check fails."""
    from dbmigrate import verify as verification

    await connection.prepare(settings, databases)
    problems = []
    for database in databases:
        problems += await verification.verify(settings, database, base, lint)
    if problems:
        for problem in problems[:-1]:
            print(f"error: {problem}", file=sys.stderr)
        raise UserError(problems[-1])


async def schema_dump(settings: Settings, databases: list[Database]) -> None:
    """Regenerate schema/<database>.sql from scratch databases migrated from empty."""
    from dbmigrate import verify as verification

    await connection.prepare(settings, databases)
    for database in databases:
        await verification.dump_schema(settings, database)


def guard(settings: Settings, command: str, databases: list[Database], confirm: str | None) -> None:
    """Destructive commands in production (and reset in staging) need the databases named in CONFIRM.

    Reset never runs in production at all.
    """
    environment = settings.environment
    if command == "reset" and environment == "production":
        raise UserError("refusing to reset with ORION_ENV=production: reset drops every table, so it never runs there")
    if environment != "production" and not (command == "reset" and environment == "staging"):
        return
    names = [db.name for db in databases]
    confirmed = {name.strip() for name in (confirm or "").split(",") if name.strip()}
    if confirmed != set(names):
        raise UserError(
            f"refusing to {command} {', '.join(names)} with ORION_ENV={environment}: "
            f"confirm by naming the database(s), e.g. CONFIRM={','.join(names)}"
        )


async def seed(settings: Settings, databases: list[Database]) -> None:
    """Load the seed data this environment gets (reference everywhere; development data in dev and test)."""
    await connection.prepare(settings, databases)

    async def seed_one(database: Database) -> None:
        async with Target.resolve(settings, database).connected("seed") as conn:
            await seeder.seed(settings, database, conn)

    await _each(databases, seed_one)


async def reset(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    """Drop, create, migrate (concurrently) and seed: the story's db:reset."""
    guard(settings, "reset", databases, options.confirm)
    await connection.prepare(settings, databases)
    # One reset of a database at a time: concurrent resets wait for each other, then run in turn.
    async with connection.reset_lock(settings, databases):
        dropped = await connection.drop_databases(settings, databases)
        say(f"reset: dropped {', '.join(dropped) or 'nothing'}")
        if settings.environment == "test":
            # Tests reset often: clone the migrated template (template_databases.py) instead of migrating.
            from dbmigrate import template_databases

            for database in databases:
                name = database_name(connection.url_for(settings, database))
                await template_databases.clone(settings, database, name)
                say(f"{database.name}: created {name} from the migrated template")
        else:
            created = await connection.create_missing_databases(settings, databases)
            say(f"reset: created {', '.join(created)}")
            await _each([Target.resolve(settings, db) for db in databases], executor.migrate)
        await seed(settings, databases)


def _one_database_for_target(databases: list[Database], options: Options) -> None:
    if options.to and len(databases) != 1:
        raise UsageError("TO names a migration of one database: set DB as well")


async def _each(items: list, work) -> None:
    """Run `work(item)` for every database (or target) concurrently; report every failure, then fail once."""
    results = await asyncio.gather(*(work(item) for item in items), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, UserError):
            raise failure
    for failure in failures[:-1]:
        print(f"error: {failure}", file=sys.stderr)
    if failures:
        raise failures[-1]
