"""db-verify: prove a database's migrations on a fresh, empty scratch copy of it.

1. Migrate from empty to the newest, one migration at a time.
2. Rollback really reverses: for each migration, the catalog after up-then-down equals the one
   before its up, and up again gives the catalog of the first up. At the first failure the walk
   stops, and the checks that need the fully migrated schema (the snapshot) are skipped, saying so.
3. Drift: tables.py matches the migrations (Piccolo's auto-migration would write nothing), and the
   migrated database matches the checked-in snapshot schema/<database>.sql.
4. Lint: every migration's SQL passes squawk (.squawk.toml), unless the migration exempts a rule
   with a reason: SQUAWK_EXEMPT = {"rule": "why"}. Findings carry the file's own line numbers.
   `lint="new"` lints only the migrations that are not on the base branch.
5. Immutability: migrations on the base branch are byte-identical here, and new ones number after.

Each file is read and hashed once per run (the Target carries them), so the cost grows with the
length of the history, not its square. Each problem is said once, on stderr, as it is found: a line
naming the migration and the first difference, with the detail indented below it (the snapshot's
unified diff, tables.py's changes column by column); the command then fails with one line counting
them.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from dbmigrate.commands import vcs
from dbmigrate.commands.common import in_a_checkout
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import quiet, say
from dbmigrate.core.text import read_utf8
from dbmigrate.core.urls import with_database
from dbmigrate.engine import executor, files
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import Migration
from dbmigrate.engine.target import Target
from dbmigrate.server import connection, pooling, schema_dump
from dbmigrate.server.catalog import first_difference, schema_catalog
from dbmigrate.server.connection import quote_identifier

SQUAWK_CONFIG = ".squawk.toml"
LINT_SCOPES = ("all", "new")


@dataclass
class Report:
    database: str
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the names of the checks that failed

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


async def verify(settings: Settings, databases: list[Database], base: str | None, lint: str = "all") -> None:
    """Prove each database's migrations on a scratch copy; fail if any check fails."""
    await connection.prepare(settings, databases)
    failed: dict[str, list[str]] = {}
    count = 0
    for database in databases:
        report = await verify_database(settings, database, base, lint)
        count += len(report.problems)
        if report.failed:
            failed[database.name] = report.failed
    if failed:
        checks = "; ".join(f"{name}: {', '.join(checks)}" for name, checks in failed.items())
        raise UserError(f"verify found {count} problem(s), each shown above ({checks})")


async def dump_schemas(settings: Settings, databases: list[Database]) -> None:
    """Regenerate schema/<database>.sql from scratch databases migrated from empty."""
    in_a_checkout(settings, "schema-dump")
    await connection.prepare(settings, databases)
    for database in databases:
        await dump_schema(settings, database)


async def verify_database(settings: Settings, database: Database, base: str | None, lint: str = "all") -> Report:
    """Run every check on `database`, saying each result as it comes."""
    if lint not in LINT_SCOPES:
        raise UsageError(f"LINT={lint!r} is not a lint scope: use LINT=all (the default) or LINT=new")
    report = Report(database.name)
    target = Target.resolve(settings, database)
    immutability_problems, immutability_passed, on_base, immutability_skipped = _immutability(target, base)
    async with scratch_database(target) as scratch:
        loaded, completed = await _stepwise_up_down_up(scratch, report)
        await _drift(scratch, report, completed, len(loaded) == len(scratch.files))
        await _lint(scratch, loaded, report, None if lint == "all" else on_base)
    if immutability_skipped:  # nothing was compared: skip, never ok
        report.skip("immutability", immutability_skipped)
    else:
        report.check("immutability", immutability_problems, immutability_passed)
    return report


async def dump_schema(settings: Settings, database: Database) -> Path:
    """Write schema/<database>.sql from a scratch database migrated from empty."""
    target = Target.resolve(settings, database)
    async with scratch_database(target) as scratch:
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


SCRATCH_PREFIX = "dbmigrate_verify_"
# While a scratch database lives, its maker holds a session advisory lock (this class, the CRC of
# its name) on the maintenance database: a scratch database nobody holds the lock of was left by a
# killed verify (SIGKILL, a lost machine), and the next verify on that server drops it.
SCRATCH_LOCK_CLASS = int.from_bytes(b"dbvf", "big") - 2**31  # a signed int4


@contextlib.asynccontextmanager
async def scratch_database(target: Target):
    """`target` moved to a new empty database on the same server, dropped afterwards (and, if this
    process is killed first, by the next verify on that server)."""
    admin_url = with_database(target.url, "postgres")
    name = f"{SCRATCH_PREFIX}{target.name}_{uuid.uuid4().hex[:8]}"
    admin = await connection.connect(target, admin_url, "verify")  # type: ignore[arg-type]
    try:
        # Through a pooler in transaction mode no session lock lasts: nothing tells a live scratch
        # database from an abandoned one, so none is dropped there.
        if not pooling.is_pooled(admin):
            await _drop_abandoned_scratch_databases(admin)
            await admin.execute("SELECT pg_advisory_lock($1, $2)", SCRATCH_LOCK_CLASS, _scratch_key(name))
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
        try:
            yield target.with_url(with_database(admin_url, name))
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def _drop_abandoned_scratch_databases(admin) -> None:
    """Drop every scratch database whose maker is gone (nobody holds its lock)."""
    rows = await admin.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", SCRATCH_PREFIX)
    for row in rows:
        key = _scratch_key(row["datname"])
        if await admin.fetchval("SELECT pg_try_advisory_lock($1, $2)", SCRATCH_LOCK_CLASS, key):
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(row['datname'])} WITH (FORCE)")
                say(f"verify: dropped {row['datname']}, a scratch database a killed verify left behind")
            finally:
                await admin.execute("SELECT pg_advisory_unlock($1, $2)", SCRATCH_LOCK_CLASS, key)


def _scratch_key(name: str) -> int:
    return zlib.crc32(name.encode()) - 2**31


async def _stepwise_up_down_up(scratch: Target, report: Report) -> tuple[list[Migration], bool]:
    """Up, down, up for each migration; (every migration loaded, whether the walk got to the end).

    One connection holds the lock for the whole walk and applies each migration through the
    executor, so the walk is linear in the number of migrations: no state is read again, nothing
    is loaded twice, and each schema is read once (the one after the second up is the next one's
    before)."""
    problems: list[str] = []
    irreversible: list[str] = []
    loaded = [await _load(scratch, m) for m in scratch.files]
    migrations = [m for m in loaded if isinstance(m, Migration)]
    problems += [m for m in loaded if isinstance(m, str)]
    stopped_at = None
    async with scratch.connected("verify") as conn, executor.locked(scratch, conn):
        before = await schema_catalog(conn)
        for migration in migrations if not problems else []:
            try:
                with quiet():
                    executor.refuse_unsafe(scratch, [migration], conn)
                    await executor.apply(scratch, conn, migration, backwards=False)
                    after = await schema_catalog(conn)
                    if not migration.reversible:
                        irreversible.append(migration.id)
                        before = after
                        continue
                    await executor.apply(scratch, conn, migration, backwards=True)
                    difference = first_difference(before, await schema_catalog(conn))
                    if difference:
                        problems.append(f"rolling back {migration.id} does not restore the schema: {difference}")
                    await executor.apply(scratch, conn, migration, backwards=False)
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
    skipped = f"; {len(irreversible)} irreversible, not rolled back: {', '.join(irreversible)}" if irreversible else ""
    if stopped_at:
        done = [m.id for m in migrations].index(stopped_at)
        problems.append(f"stopped at {stopped_at}: {done} of {len(migrations)} migration(s) walked, none after it")
    report.check(
        "migrate up, down, up",
        problems,
        f"{len(migrations)} migration(s) applied from empty; each rollback restores the schema{skipped}",
    )
    return migrations, completed


async def _load(target: Target, file: MigrationFile) -> Migration | str:
    try:
        return await executor.load(target, file)
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


async def _lint(scratch: Target, migrations: list[Migration], report: Report, on_base: set[Path] | None) -> None:
    """Lint every migration, or (on_base given) only those whose files are not on the base branch."""
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(squawk).exists():
        report.check("lint", ["squawk is not installed: run `make venv`"], "")
        return
    chosen = [m for m in migrations if on_base is None or m.file.path not in on_base]
    config = scratch.project_root / SQUAWK_CONFIG
    problems: list[str] = []
    async with scratch.connected("lint") as conn:
        with tempfile.TemporaryDirectory() as folder:
            for migration in chosen:
                problems += await _lint_one(conn, squawk, config, Path(folder), migration, scratch.project_root)
    scope = "" if on_base is None else f" not on the base branch ({len(migrations) - len(chosen)} left out: LINT=new)"
    report.check("lint", problems, f"squawk finds nothing in {len(chosen)} migration(s){scope}")


async def _lint_one(conn, squawk: str, config: Path, folder: Path, migration: Migration, root: Path) -> list[str]:
    exempt = migration.options.squawk_exempt
    unreasoned = [rule for rule, reason in exempt.items() if not str(reason).strip()]
    if unreasoned:
        return [f"{migration.id}: SQUAWK_EXEMPT needs a reason for {', '.join(unreasoned)}"]
    sources_by_file: dict[str, str] = {}
    for source in await migration.lint_sources(conn):
        # Blank lines before the SQL put each statement at its line in its own file.
        padded = sources_by_file.get(source.path, "")
        gap = max(source.first_line - 1 - padded.count("\n"), 0)
        sources_by_file[source.path] = padded + "\n" * gap + source.text
    findings: list[str] = []
    for index, (shown, sql) in enumerate(sources_by_file.items()):
        path = folder / f"{migration.file.app}_{index}_{migration.id}.sql"
        path.write_text(sql)
        findings += _squawk(squawk, config, path, migration, exempt, _relative(shown, root))
    return findings


def _squawk(squawk: str, config: Path, path: Path, migration: Migration, exempt: dict, shown: str) -> list[str]:
    command = [squawk, "--reporter=gcc", f"--config={config}", str(path)]
    if migration.transactional:
        command.append("--assume-in-transaction")
    if exempt:
        # squawk's --exclude replaces the config file's excluded_rules rather than adding to them.
        configured = _squawk_config(config).get("excluded_rules", []) if config.exists() else []
        command.append(f"--exclude={','.join([*configured, *exempt])}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    findings = [line for line in result.stdout.splitlines() if re.search(r": (warning|error): ", line)]
    if result.returncode != 0 and not findings:  # e.g. an unknown rule name: nothing was linted
        reason = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}").splitlines()[0]
        return [f"{migration.id}: squawk could not lint it: {reason}"]
    return [f"{migration.id}: {_finding(line, shown)}" for line in findings]


def _squawk_config(config: Path) -> dict:
    try:
        return tomllib.loads(read_utf8(config, SQUAWK_CONFIG))
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{SQUAWK_CONFIG} does not parse ({error}): fix it, it is TOML") from None


def _relative(shown: str, root: Path) -> str:
    try:
        return str(Path(shown).relative_to(root))
    except ValueError:
        return shown


def _finding(gcc_line: str, shown: str) -> str:
    """`file.sql:12:3: warning: rule-name message` -> `orion/.../x.py line 13: rule-name message`
    (squawk counts lines from 0)."""
    match = re.match(r".*?:(\d+):\d+: (?:warning|error): (.*)", gcc_line)
    return f"{shown} line {int(match.group(1)) + 1}: {match.group(2)}" if match else gcc_line


def _immutability(target: Target, base: str | None) -> tuple[list[str], str, set[Path] | None, str | None]:
    """(problems, what passed, the migration files on the base branch or None, why it was skipped or
    None) against the base branch."""
    root, migrations = target.project_root, target.files
    if not vcs.in_checkout(root):
        return [], "", None, "not a git checkout, so there is no base branch to compare with"
    base = base or vcs.default_base(root)
    if base is None:
        return [], "", None, "no BASE, origin/main or main to compare with"
    if re.fullmatch(r"0+", base):  # GitHub's "before" of a push that creates a branch
        return [], "", set(), "a new branch: nothing to compare with"
    folder = files.migrations_folder(root, target.database).relative_to(root)
    listed = vcs.files_at(root, base, folder)
    if listed is None:
        return [f"BASE {base!r} is not a commit git knows"], "", None, None
    at_base = [p for p in listed if p.endswith((".py", ".sql")) and not p.endswith("__init__.py")]
    problems = []
    for relative in at_base:
        current = root / relative
        if not current.exists():
            problems.append(f"{relative} exists on {base} but was deleted: never remove committed migrations")
        elif current.read_bytes() != vcs.git_show(root, f"{base}:{relative}"):
            problems.append(f"{relative} differs from {base}: never modify committed migrations, write a new one")
    base_paths = {root / p for p in at_base}
    numbers_at_base = [m.number for m in migrations if m.path in base_paths and m.number is not None]
    highest = max(numbers_at_base, default=0)
    for migration in migrations:
        if migration.path not in base_paths and migration.number is not None and migration.number <= highest:
            problems.append(
                f"{migration.relative_path(root)} is new but numbered {migration.number:03d}, not after "
                f"{highest:03d} on {base}: renumber it {highest + 1:03d} or later"
            )
    passed = f"{len(at_base)} migration file(s) on {base} unchanged; new ones number after them"
    return problems, passed, base_paths, None


async def _dump(target: Target) -> str:
    async with target.connected("dump") as conn:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    return schema_dump.dump(target.url, major)
