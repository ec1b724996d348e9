"""db-verify: prove a database's migrations on a fresh, empty scratch copy of it.

1. Migrate from empty to the newest, one migration at a time.
2. Rollback really reverses: for each migration, the catalog after up-then-down equals the one
   before its up, and up again gives the catalog of the first up.
3. Drift: tables.py matches the migrations (Piccolo's auto-migration would write nothing), and the
   migrated database matches the checked-in snapshot schema/<database>.sql.
4. Lint: each migration's SQL passes squawk (.squawk.toml), unless the migration exempts a rule
   with a reason: SQUAWK_EXEMPT = {"rule": "why"}.
5. Immutability: migrations on the base branch are byte-identical here, and new ones number after.

Every check runs; each problem is one line naming the migration and the first difference.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from dbmigrate import connection, executor, loader, schema_dump
from dbmigrate.catalog import first_difference, schema_catalog
from dbmigrate.config import Database, Settings
from dbmigrate.connection import quote_identifier
from dbmigrate.errors import UserError
from dbmigrate.loader import LoadedMigration, MigrationFile
from dbmigrate.output import say
from dbmigrate.urls import with_database

SQUAWK_CONFIG = ".squawk.toml"


@dataclass
class Report:
    database: str
    problems: list[str] = field(default_factory=list)

    def check(self, name: str, problems: list[str], passed: str) -> None:
        self.problems += [f"{self.database}: {name}: {p}" for p in problems]
        say(f"{self.database}: {'FAIL' if problems else 'ok  '} {name}: {passed if not problems else problems[0]}")


async def verify(settings: Settings, database: Database, base: str | None) -> list[str]:
    """Run every check on `database`; return the problems found (empty when all pass)."""
    report = Report(database.name)
    files = loader.discover(settings.project_root, database)
    async with scratch_database(settings, database) as scratch:
        loaded = await _stepwise_up_down_up(scratch, database, files, report)
        await _drift(scratch, database, report)
        await _lint(scratch, database, loaded, report)
    report.check("immutability", *_immutability(settings.project_root, database, files, base))
    return report.problems


async def dump_schema(settings: Settings, database: Database) -> Path:
    """Write schema/<database>.sql from a scratch database migrated from empty."""
    async with scratch_database(settings, database) as scratch:
        with contextlib.redirect_stdout(io.StringIO()):
            await executor.migrate(scratch, database)
        text = await _dump(scratch, database)
    path = schema_dump.snapshot_path(settings.project_root, database.name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    say(f"{database.name}: wrote {path.relative_to(settings.project_root)}")
    return path


@contextlib.asynccontextmanager
async def scratch_database(settings: Settings, database: Database):
    """Settings in which `database` is a new empty database on the same server, dropped afterwards."""
    admin_url = connection.server_url(settings, database)
    name = f"dbmigrate_verify_{database.name}_{uuid.uuid4().hex[:8]}"
    admin = await connection.connect(settings, admin_url, "verify")
    try:
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
        try:
            yield replace(settings, values={**settings.values, database.url_variable: with_database(admin_url, name)})
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def _stepwise_up_down_up(
    scratch: Settings, database: Database, files: list[MigrationFile], report: Report
) -> list[LoadedMigration]:
    problems: list[str] = []
    loaded: list[LoadedMigration] = []
    irreversible: list[str] = []
    for migration in files:
        before = await _catalog(scratch, database)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                await executor.migrate(scratch, database, to=migration.id, allow_out_of_order=True)
                after = await _catalog(scratch, database)
                current = await loader.load(migration, scratch.project_root)
                loaded.append(current)
                if not executor.is_reversible(current):
                    irreversible.append(migration.id)
                    continue
                await executor.rollback(scratch, database, steps=1)
                difference = first_difference(before, await _catalog(scratch, database))
                if difference:
                    problems.append(f"rolling back {migration.id} does not restore the schema: {difference}")
                await executor.migrate(scratch, database, to=migration.id, allow_out_of_order=True)
                difference = first_difference(after, await _catalog(scratch, database))
                if difference:
                    problems.append(f"{migration.id} applied again gives another schema: {difference}")
        except UserError as error:
            problems.append(str(error))
            break
    skipped = f"; {len(irreversible)} irreversible, not rolled back: {', '.join(irreversible)}" if irreversible else ""
    report.check(
        "migrate up, down, up",
        problems,
        f"{len(files)} migration(s) applied from empty; each rollback restores the schema{skipped}",
    )
    return loaded


async def _drift(scratch: Settings, database: Database, report: Report) -> None:
    from dbmigrate.templates import auto_migration_source

    problems = []
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints a table of counts
        auto = await auto_migration_source(database.app, "000_drift_check", "drift_check")
    if auto is not None:
        problems.append(
            f"{database.app}/tables.py has changes no migration makes: "
            f"run `make db-migrate-create NAME=... DB={database.name} AUTO=1`"
        )
    path = schema_dump.snapshot_path(scratch.project_root, database.name)
    if not path.exists():
        problems.append(f"no snapshot {path.relative_to(scratch.project_root)}: run `make db-schema-dump`")
    else:
        difference = schema_dump.first_difference(path.read_text(), await _dump(scratch, database))
        if difference:
            problems.append(
                f"the migrated database differs from {path.relative_to(scratch.project_root)} at {difference}; "
                "run `make db-schema-dump` and commit the result"
            )
    report.check("drift", problems, "tables.py matches the migrations; the schema matches its snapshot")


async def _lint(scratch: Settings, database: Database, loaded: list[LoadedMigration], report: Report) -> None:
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(squawk).exists():
        report.check("lint", ["squawk is not installed: run `make venv`"], "")
        return
    config = scratch.project_root / SQUAWK_CONFIG
    problems: list[str] = []
    async with executor.connected(scratch, database, "lint") as conn:
        with tempfile.TemporaryDirectory() as folder:
            for migration in loaded:
                problems += await _lint_one(conn, squawk, config, Path(folder), migration)
    report.check("lint", problems, f"squawk finds nothing in {len(loaded)} migration(s)")


async def _lint_one(conn, squawk: str, config: Path, folder: Path, migration: LoadedMigration) -> list[str]:
    exempt = migration.squawk_exempt
    unreasoned = [rule for rule, reason in exempt.items() if not str(reason).strip()]
    if unreasoned:
        return [f"{migration.file.id}: SQUAWK_EXEMPT needs a reason for {', '.join(unreasoned)}"]
    sql = await executor.preview_sql(conn, migration, backwards=False)
    path = folder / f"{migration.file.app}_{migration.file.id}.sql"
    path.write_text(sql)
    command = [squawk, "--reporter=gcc", f"--config={config}", str(path)]
    if migration.transactional:
        command.append("--assume-in-transaction")
    if exempt:
        # squawk's --exclude replaces the config file's excluded_rules rather than adding to them.
        configured = tomllib.loads(config.read_text()).get("excluded_rules", []) if config.exists() else []
        command.append(f"--exclude={','.join([*configured, *exempt])}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    findings = [line for line in result.stdout.splitlines() if re.search(r": (warning|error): ", line)]
    if result.returncode != 0 and not findings:  # e.g. an unknown rule name: nothing was linted
        reason = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}").splitlines()[0]
        return [f"{migration.file.id}: squawk could not lint it: {reason}"]
    return [f"{migration.file.id}: {_finding(line)}" for line in findings]


def _finding(gcc_line: str) -> str:
    """`file.sql:12:3: warning: rule-name message` -> `line 12: rule-name message`."""
    match = re.match(r".*?:(\d+):\d+: (?:warning|error): (.*)", gcc_line)
    return f"line {match.group(1)} of its SQL: {match.group(2)}" if match else gcc_line


def _immutability(
    root: Path, database: Database, files: list[MigrationFile], base: str | None
) -> tuple[list[str], str]:
    """(problems, what passed) for the migration files of `database` against the base branch."""
    if not (shutil.which("git") and _git(root, "rev-parse", "--is-inside-work-tree") == "true"):
        return [], "not a git checkout: skipped"
    base = base or _default_base(root)
    if base is None:
        return [], "no BASE, origin/main or main to compare with: skipped"
    if re.fullmatch(r"0+", base):  # GitHub's "before" of a push that creates a branch
        return [], "a new branch: nothing to compare with, skipped"
    folder = loader.migrations_folder(root, database).relative_to(root)
    listed = _git(root, "ls-tree", "-r", "--name-only", base, "--", str(folder))
    if listed is None:
        return [f"BASE {base!r} is not a commit git knows"], ""
    at_base = [p for p in listed.splitlines() if p.endswith(".py") and not p.endswith("__init__.py")]
    problems = []
    for relative in at_base:
        current = root / relative
        if not current.exists():
            problems.append(f"{relative} exists on {base} but was deleted: never remove committed migrations")
        elif current.read_bytes() != _git_show(root, f"{base}:{relative}"):
            problems.append(f"{relative} differs from {base}: never modify committed migrations, write a new one")
    base_paths = {root / p for p in at_base}
    numbers_at_base = [m.number for m in files if m.path in base_paths and m.number is not None]
    highest = max(numbers_at_base, default=0)
    for migration in files:
        if migration.path not in base_paths and migration.number is not None and migration.number <= highest:
            problems.append(
                f"{migration.relative_path(root)} is new but numbered {migration.number:03d}, not after "
                f"{highest:03d} on {base}: renumber it {highest + 1:03d} or later"
            )
    return problems, f"{len(at_base)} migration(s) on {base} unchanged; new ones number after them"


def _default_base(root: Path) -> str | None:
    merge_base = _git(root, "merge-base", "HEAD", "origin/main")
    if merge_base:
        return merge_base[:12]
    return "main" if _git(root, "rev-parse", "--verify", "--quiet", "main") else None


def _git(root: Path, *args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    return result.stdout.strip() if result.returncode == 0 else None


def _git_show(root: Path, revision_path: str) -> bytes:
    result = subprocess.run(["git", "show", revision_path], cwd=root, capture_output=True, timeout=30)
    if result.returncode != 0:
        raise UserError(f"git show {revision_path} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


async def _catalog(settings: Settings, database: Database) -> dict:
    async with executor.connected(settings, database, "catalog") as conn:
        return await schema_catalog(conn)


async def _dump(settings: Settings, database: Database) -> str:
    url = connection.url_for(settings, database)
    async with executor.connected(settings, database, "dump") as conn:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    return schema_dump.dump(url, major)
