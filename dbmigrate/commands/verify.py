"""db-verify: prove a database's migrations on a fresh, empty scratch copy of it.

1. Migrate from empty to the newest, one migration at a time.
2. Rollback really reverses: for each migration, the catalog after up-then-down equals the one
   before its up, and up again gives the catalog of the first up. At the first failure the walk
   stops, and the checks that need the fully migrated schema (the snapshot) are skipped, saying so.
3. Drift: tables.py matches the migrations (Piccolo's auto-migration would write nothing), and the
   migrated database matches the checked-in snapshot schema/<database>.sql.
4. Lint: every migration's SQL passes squawk (.squawk.toml), unless the migration exempts a rule
   with a reason: SQUAWK_EXEMPT = {"rule": "why"}. Findings carry the file's own line numbers.
   `lint="new"` lints (and judges safety of) only the migrations that are not on the base branch.
5. Immutability: migrations on the base branch are byte-identical here, and new ones number after.
6. Safety: each migration's first up is applied statement by statement by the lock trace
   (engine/trace.py), which records what each statement locked, rewrote, scanned and validated;
   the policy (engine/safety_rules.py) fails a migration that would block a table that existed
   before it, printing the safe recipe, unless it accepts the finding with a reason:
   SAFETY_ACCEPTED = {"rule": "why"} (commands/safety.py). TRACE=0 applies without the trace.
7. Phases: the migrations not on the base branch, applied pre-deploy first and post-deploy after
   (as `make db-migrate PHASE=pre`, the deploy, then `make db-migrate`), build the same schema as
   applying them in order (verify_phases.py).
8. Squash: a baseline beside the history it replaces builds the same catalog and rows (squash.py).

Each file is read and hashed once per run (the Target carries them), so the cost grows with the
length of the history, not its square. Each problem is said once, on stderr, as it is found: a line
naming the migration and the first difference, with the detail indented below it (the snapshot's
unified diff, tables.py's changes column by column, a safety finding's recipe); the command then
fails with one line counting them.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dbmigrate.commands import safety, squash, verify_phases
from dbmigrate.commands.base_branch import immutability
from dbmigrate.commands.common import in_a_checkout
from dbmigrate.commands.lint import lint as lint_migrations
from dbmigrate.commands.scratch import scratch_database
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import quiet, reporting_to, say
from dbmigrate.core.text import read_utf8
from dbmigrate.engine import executor, planning, preflight, runner, trace
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import Migration
from dbmigrate.engine.target import Target
from dbmigrate.engine.trace_model import MigrationTrace
from dbmigrate.server import connection, schema_dump
from dbmigrate.server.catalog import Catalog, first_difference, schema_catalog, without_column_places

LINT_SCOPES = ("all", "new")


@dataclass
class Report:
    database: str
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the names of the checks that failed
    judged: list[safety.Judged] = field(default_factory=list)  # the safety check's traces and findings

    def check(self, name: str, problems: list[str], passed: str) -> None:
        """Say that check `name` passed, or each of its problems once (on stderr); a problem's lines
        after the first are its detail, printed indented."""
        if not problems:
            say(f"{self.database}: ok   {name}: {passed}")
            return
        self.failed.append(name)
        for problem in problems:
            first, *detail = problem.splitlines()
            self.problems.append(f"{self.database}: {name}: {first}")
            print(f"{self.database}: FAIL {name}: {first}", file=sys.stderr, flush=True)
            for line in detail:
                print(f"    {line}", file=sys.stderr, flush=True)

    def skip(self, name: str, why: str) -> None:
        say(f"{self.database}: skip {name}: {why}")


@dataclass(frozen=True)
class VerifyOptions:
    base: str | None = None
    lint: str = "all"  # or "new": lint and judge only the migrations not on the base branch
    trace: bool = True  # apply each migration statement by statement, tracing its locks (TRACE=0: not)
    json: bool = False  # FORMAT=json: the traces and findings on stdout (the check lines go to stderr)
    summary: Path | None = None  # SUMMARY=path, or $GITHUB_STEP_SUMMARY: a Markdown table for a pull request
    append_summary: bool = False  # $GITHUB_STEP_SUMMARY is appended to, as GitHub expects


async def verify(settings: Settings, databases: list[Database], options: VerifyOptions = VerifyOptions()) -> None:
    """Prove each database's migrations on a scratch copy; fail if any check fails."""
    if options.lint not in LINT_SCOPES:
        raise UsageError(f"LINT={options.lint!r} is not a lint scope: use LINT=all (the default) or LINT=new")
    await connection.prepare(settings, databases)
    reports = []
    with reporting_to(_to_stderr) if options.json else contextlib.nullcontext():
        for database in databases:
            reports.append(await verify_database(settings, database, options))
    if options.json:
        print(json.dumps(safety.document(reports), indent=2))
    if options.summary is not None and options.trace:
        safety.write_summary(options.summary, reports, append=options.append_summary)
    failed = {report.database: report.failed for report in reports if report.failed}
    if failed:
        count = sum(len(report.problems) for report in reports)
        checks = "; ".join(f"{name}: {', '.join(names)}" for name, names in failed.items())
        raise UserError(f"verify found {count} problem(s), each shown above ({checks})")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def dump_schemas(settings: Settings, databases: list[Database]) -> None:
    """Regenerate schema/<database>.sql from scratch databases migrated from empty."""
    in_a_checkout(settings, "schema-dump")
    await connection.prepare(settings, databases)
    for database in databases:
        await dump_schema(settings, database)


async def verify_database(settings: Settings, database: Database, options: VerifyOptions = VerifyOptions()) -> Report:
    """Run every check on `database`, saying each result as it comes."""
    report = Report(database.name)
    target = Target.resolve(settings, database)
    immutability_problems, immutability_passed, on_base, immutability_skipped = immutability(target, options.base)
    scope = None if options.lint == "all" else on_base
    async with scratch_database(target.history_walk()) as scratch:
        loaded, completed, traces = await _stepwise_up_down_up(scratch, report, options.trace)
        if options.trace:
            report.judged = safety.check(report, traces, loaded, scope)
        else:
            report.skip("safety", "TRACE=0: the migrations were applied without their lock trace")
        await _drift(scratch, report, completed, len(loaded) == len(scratch.files))
        await lint_migrations(scratch, loaded, report, scope)
        await verify_phases.check(scratch, report, on_base, completed)
        await squash.check_baseline(scratch, target, report, completed)
    if immutability_skipped:  # nothing was compared: skip, never ok
        report.skip("immutability", immutability_skipped)
    else:
        report.check("immutability", immutability_problems, immutability_passed)
    return report


async def dump_schema(settings: Settings, database: Database) -> Path:
    """Write schema/<database>.sql from a scratch database migrated from empty."""
    target = Target.resolve(settings, database)
    async with scratch_database(target.history_walk()) as scratch:
        with quiet():
            await executor.migrate(scratch)
        text = await _dump(scratch)
    path = schema_dump.snapshot_path(target.project_root, database.name)
    try:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:  # schema/ is a file, or not writable
        raise UserError(
            f"cannot write {path.relative_to(target.project_root)} ({error.strerror or type(error).__name__}): "
            f"{path.parent.relative_to(target.project_root)}/ must be a folder you can write"
        ) from None
    say(f"{database.name}: wrote {path.relative_to(target.project_root)}")
    return path


def _rollback_difference(notes: list[str], migration_id: str, before: Catalog, rolled_back: Catalog) -> list[str]:
    """The problem when rolling back `migration_id` did not restore `before`. A column put back at
    another place is only said, as a note: PostgreSQL appends a column added again, so no rollback
    of DROP COLUMN can do better, yet code that reads columns by place (SELECT *, INSERT without a
    column list) sees the change."""
    difference = first_difference(before, rolled_back)
    if difference is None:
        return []
    if first_difference(without_column_places(before), without_column_places(rolled_back)) is None:
        notes.append(
            f"rolling back {migration_id} puts a column back at another place ({difference}): PostgreSQL "
            "appends a column added again; code that reads columns by place (SELECT *, INSERT without a "
            "column list) sees the new order"
        )
        return []
    return [f"rolling back {migration_id} does not restore the schema: {difference}"]


async def _stepwise_up_down_up(
    scratch: Target, report: Report, tracing: bool = True
) -> tuple[list[Migration], bool, list[MigrationTrace]]:
    """Up, down, up for each migration; (every migration loaded, whether the walk got to the end,
    the trace of each first up). With `tracing`, each first up is applied statement by statement
    by the lock trace (engine/trace.py) instead of the executor.

    One connection holds the lock for the whole walk and applies each migration: no state is read
    again, nothing is loaded twice, and the schema is read three times per migration (after the up,
    the down and the second up, which is the next one's before). Each read costs the size of the
    schema so far, so a history that adds a table per migration costs more per migration as it
    grows (bench/RESULTS.md: verify of 1,200 against 300 migrations)."""
    problems: list[str] = []
    irreversible: list[str] = []
    notes: list[str] = []  # said after the walk, which runs quiet
    traces: list[MigrationTrace] = []
    loaded = [await _load(m) for m in scratch.files]
    migrations = [m for m in loaded if isinstance(m, Migration)]
    problems += [m for m in loaded if isinstance(m, str)]
    stopped_at = None
    async with scratch.connected("verify") as conn, planning.locked(scratch, conn):
        before = await schema_catalog(conn)
        for migration in migrations if not problems else []:
            try:
                with quiet():
                    if tracing:
                        traces.append(await trace.apply_traced(scratch, migration, conn))
                    else:
                        preflight.refuse_unsafe(scratch, [migration], conn)
                        await runner.apply(scratch, conn, migration, backwards=False)
                    after = await schema_catalog(conn)
                    if not migration.reversible:
                        irreversible.append(migration.id)
                        before = after
                        continue
                    await runner.apply(scratch, conn, migration, backwards=True)
                    problems += _rollback_difference(notes, migration.id, before, await schema_catalog(conn))
                    await runner.apply(scratch, conn, migration, backwards=False)
                    before = await schema_catalog(conn)
                    difference = first_difference(after, before)
                    if difference:
                        problems.append(f"{migration.id} applied again gives another schema: {difference}")
            except UserError as error:
                problems.append(str(error))
            if problems:
                stopped_at = migration.id
                break
    completed = not problems
    for note in notes:
        say(f"{report.database}: note {note}")
    skipped = f"; {len(irreversible)} irreversible, not rolled back: {', '.join(irreversible)}" if irreversible else ""
    if stopped_at:
        done = [m.id for m in migrations].index(stopped_at)
        problems.append(f"stopped at {stopped_at}: {done} of {len(migrations)} migration(s) walked, none after it")
    report.check(
        "migrate up, down, up",
        problems,
        f"{len(migrations)} migration(s) applied from empty; each rollback restores the schema{skipped}",
    )
    return migrations, completed, traces


async def _load(file: MigrationFile) -> Migration | str:
    try:
        return await preflight.load(file)
    except UserError as error:
        return str(error)


async def _drift(scratch: Target, report: Report, completed: bool, all_load: bool) -> None:
    from dbmigrate.commands.model_drift import model_changes  # imports Piccolo's differ: only verify needs it

    problems = []
    if not all_load:  # Piccolo's differ imports every migration file itself: it would fail the same way
        report.skip("drift", "a migration does not load, so tables.py cannot be compared with the migrations")
        return
    changes = await model_changes(scratch.database.app)
    if changes:
        problems.append(
            "\n".join(
                [
                    f"{scratch.database.app}/tables.py has changes no migration makes "
                    f"(`make db-migrate-create NAME=... DB={scratch.name} AUTO=1` writes them):",
                    *changes,
                ]
            )
        )
    path = schema_dump.snapshot_path(scratch.project_root, scratch.name)
    relative = path.relative_to(scratch.project_root)
    if not completed:
        report.skip("snapshot", f"the migrations did not all apply, so the schema is not compared with {relative}")
    elif not path.exists():
        problems.append(f"no snapshot {relative}: run `make db-schema-dump`")
    else:
        snapshot = read_utf8(path, str(relative))
        diff = schema_dump.unified_diff(snapshot, await _dump(scratch), str(relative), "the migrated database")
        if diff:
            problems.append(
                "\n".join(
                    [
                        f"the migrated database differs from {relative}; if the change is intended, run "
                        f"`make db-schema-dump DB={scratch.name}` and commit the result:",
                        *diff,
                    ]
                )
            )
    passed = "tables.py matches the migrations" + ("; the schema matches its snapshot" if completed else "")
    report.check("drift", problems, passed)


async def _dump(target: Target) -> str:
    async with target.connected("dump") as conn:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    return schema_dump.dump(target.url, major)
