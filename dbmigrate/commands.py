"""Commands: one short coroutine per user-facing command, as in Alembic's command.py.

Each takes the settings and the databases it applies to and hands over to the executor, the
loader or the connection layer. The CLI, the noxfile and the Makefile only call these.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dbmigrate import connection, embedded, executor, loader, seeder
from dbmigrate.config import Database, Settings
from dbmigrate.errors import UsageError, UserError
from dbmigrate.output import say
from dbmigrate.state import MigrationState
from dbmigrate.urls import database_name, redact

MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
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
    await connection.prepare(settings, databases)
    if options.dry_run:
        for database in databases:
            await executor.dry_run(settings, database, False, options.to, None, options.out_of_order)
        return
    await _each(databases, lambda db: executor.migrate(settings, db, options.to, options.out_of_order))


async def down(settings: Settings, database: Database, options: Options = Options()) -> None:
    """Roll back the last applied migration of one database (or STEPS of them, or back to TO)."""
    await connection.prepare(settings, [database])
    if options.dry_run:
        await executor.dry_run(settings, database, True, options.to, options.steps)
        return
    guard(settings, "down", [database], options.confirm)
    await executor.rollback(settings, database, options.steps, options.to)


async def status(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    """Show, per database, what is applied, pending, modified, missing or failed."""
    await connection.prepare(settings, databases)
    reports = []
    for database in databases:
        async with executor.connected(settings, database, f"status {database.name}") as conn:
            state = await executor.read_state(settings, database, conn)
        reports.append(_status_report(settings, database, state))
    if options.json:
        say(json.dumps({"databases": reports}, indent=2))
    else:
        for report in reports:
            _print_status(report)
    if options.check:
        problems = [f"{r['database']}: {_summary(r)}" for r in reports if not r["ok"]]
        if problems:
            raise UserError("; ".join(problems))


async def repair(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    guard(settings, "repair", databases, options.confirm)
    await connection.prepare(settings, databases)
    for database in databases:
        await executor.repair(settings, database)


async def baseline(settings: Settings, database: Database, options: Options = Options()) -> None:
    if not options.to:
        raise UsageError("baseline needs TO, the last migration the database already has (e.g. TO=003)")
    guard(settings, "baseline", [database], options.confirm)
    await connection.prepare(settings, [database])
    await executor.baseline(settings, database, options.to)


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


async def create(settings: Settings, database: Database, name: str, auto: bool) -> Path | None:
    """Write the next numbered migration of `database`; None when `auto` finds no change."""
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
    from dbmigrate.templates import auto_migration_source, sql_migration_source

    if auto:
        source = await auto_migration_source(database.app, migration_id, name)
        if source is None:
            say(f"{database.name}: no changes detected in {database.app}/tables.py; no migration written")
            return None
    else:
        source = sql_migration_source(database.app, migration_id, name)
    path.write_text(source, encoding="utf-8")
    say(f"{database.name}: created {path.relative_to(settings.project_root)}")
    return path


async def verify(settings: Settings, databases: list[Database], base: str | None) -> None:
    """Prove each database's migrations on a scratch copy (verify.py); fail if any check fails."""
    from dbmigrate import verify as verification

    await connection.prepare(settings, databases)
    problems = []
    for database in databases:
        problems += await verification.verify(settings, database, base)
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
        async with executor.connected(settings, database, f"seed {database.name}") as conn:
            await seeder.seed(settings, database, conn)

    await _each(databases, seed_one)


async def reset(settings: Settings, databases: list[Database], options: Options = Options()) -> None:
    """Drop, create, migrate (concurrently) and seed: the story's db:reset."""
    guard(settings, "reset", databases, options.confirm)
    await connection.prepare(settings, databases)
    dropped = await connection.drop_databases(settings, databases)
    say(f"reset: dropped {', '.join(dropped) or 'nothing'}")
    if settings.environment == "test":
        # Tests reset often: clone the migrated template (templates_db.py) instead of migrating.
        from dbmigrate import templates_db

        for database in databases:
            name = database_name(connection.url_for(settings, database))
            await templates_db.clone(settings, database, name)
            say(f"{database.name}: created {name} from the migrated template")
    else:
        created = await connection.create_missing_databases(settings, databases)
        say(f"reset: created {', '.join(created)}")
        await _each(databases, lambda db: executor.migrate(settings, db))
    await seed(settings, databases)


def _one_database_for_target(databases: list[Database], options: Options) -> None:
    if options.to and len(databases) != 1:
        raise UsageError("TO names a migration of one database: set DB as well")


def _status_report(settings: Settings, database: Database, state: MigrationState) -> dict:
    modified = {m.id for m in state.modified}
    late = {m.id for m in state.out_of_order}
    rows = []
    for migration in state.files:
        applied = state.applied.get(migration.id)
        failed = state.failed.get(migration.id)
        row = {"id": migration.id, "state": "pending", "out_of_order": migration.id in late}
        if applied:
            row.update(
                state="modified" if migration.id in modified else "applied",
                applied_at=applied.ran_on.isoformat(sep=" ", timespec="seconds") if applied.ran_on else None,
                duration_ms=applied.duration_ms,
                applied_by=applied.recorded_by,
                checksum_recorded=applied.checksum is not None,
            )
        elif failed:
            row.update(state="failed", failed_at=failed.failed_at.isoformat(sep=" ", timespec="seconds"))
            row["error"] = failed.error
        rows.append(row)
    rows += [{"id": i, "state": "missing"} for i in state.missing]
    rows += [{"id": i, "state": "removed"} for i in state.removed]
    counts = {kind: sum(1 for r in rows if r["state"] == kind) for kind in ("applied", "pending", "modified")}
    counts.update(missing=len(state.missing), failed=len(state.failed), out_of_order=len(late))
    ok = not (counts["pending"] or counts["modified"] or counts["missing"] or counts["failed"])
    url = redact(connection.url_for(settings, database))
    return {"database": database.name, "url": url, "migrations": rows, "counts": counts, "ok": ok}


_MARKS = {"applied": "[x]", "pending": "[ ]", "modified": "[M]", "missing": "[?]", "removed": "[-]", "failed": "[F]"}


def _print_status(report: dict) -> None:
    say(f"{report['database']} ({report['url']})")
    for row in report["migrations"]:
        say(f"  {_MARKS[row['state']]} {row['id']:<40} {_describe(row)}")
    say(f"  {_summary(report)}")


def _describe(row: dict) -> str:
    state = row["state"]
    if state in ("applied", "modified"):
        took = f", took {row['duration_ms']} ms" if row.get("duration_ms") is not None else ""
        by = f", by {row['applied_by']}" if row.get("applied_by") else ""
        text = f"applied {row['applied_at'] or 'at an unknown time'}{took}{by}"
        if state == "modified":
            text += "; MODIFIED since: restore the file, or repair if deliberate"
        elif not row.get("checksum_recorded"):
            text += " (no checksum: applied outside dbmigrate; repair records one)"
        return text
    if state == "pending":
        return "pending, OUT OF ORDER (numbered before an applied migration)" if row["out_of_order"] else "pending"
    if state == "failed":
        return (
            f"FAILED midway at {row['failed_at']} and not transactional: may be partly applied ({row['error']}). "
            "Clean up by hand, then migrate again"
        )
    if state == "missing":
        return "applied, but its file is MISSING: restore it, or repair if deleted on purpose"
    return "applied; file removed (accepted by repair)"


def _summary(report: dict) -> str:
    counts = report["counts"]
    parts = [f"{counts['applied'] + counts['modified']} applied", f"{counts['pending']} pending"]
    parts += [
        f"{counts[k]} {k.replace('_', ' ')}" for k in ("modified", "missing", "failed", "out_of_order") if counts[k]
    ]
    return ", ".join(parts)


async def _each(databases: list[Database], work) -> None:
    """Run `work(db)` for every database concurrently; report every failure, then fail once."""
    results = await asyncio.gather(*(work(db) for db in databases), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, UserError):
            raise failure
    for failure in failures[:-1]:
        print(f"error: {failure}", file=sys.stderr)
    if failures:
        raise failures[-1]
