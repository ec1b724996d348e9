"""Writing an imported history as this framework's migration files, as Atlas's `migrate import`
does: one migration per source migration, in the source's order, numbered after the database's
existing migrations. The SQL is copied verbatim into sibling `.up.sql` / `.down.sql` files; the
generated `.py` only says which they are (engine/sql_migration.py). Each generated file records
where it came from (`SOURCE_TOOL`, `SOURCE_VERSION`: the value the tool's own bookkeeping table
holds), which adopt.py matches against a live database.

Invariant: nothing is written unless every file can be written, and no file is ever overwritten.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import files
from dbmigrate.engine.files import number_of
from dbmigrate.engine.sql_migration import MIGRATION_FILE_VERSION, NOTHING_TO_UNDO
from dbmigrate.importing.reading import read_history
from dbmigrate.importing.source import SourceMigration

MAX_NAME_LENGTH = 60


def migration_name(source_name: str) -> str:
    """A migration name from a source description: lower case [a-z0-9_], at most 60 characters,
    starting with a letter."""
    name = re.sub(r"[^a-z0-9]+", "_", source_name.lower()).strip("_")
    if not name:
        name = "migration"
    elif not name[0].isalpha():
        name = f"m_{name}"
    return name[:MAX_NAME_LENGTH].rstrip("_")


@dataclass(frozen=True)
class PlannedMigration:
    source: SourceMigration
    migration_id: str
    files: dict[Path, str]  # path -> content


_SOURCE_LINE = re.compile(
    r'^SOURCE_TOOL = "(?P<tool>[^"\n]+)"\n'
    r'SOURCE_VERSION = \(?\s*(?P<version>"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')',
    re.MULTILINE,
)


def source_of(migration_file: Path) -> tuple[str, str] | None:
    """(tool, version) of an imported migration file, read as text; None for any other file."""
    match = _SOURCE_LINE.search(migration_file.read_text(encoding="utf-8", errors="replace"))
    return (match.group("tool"), ast.literal_eval(match.group("version"))) if match else None


def plan(
    folder: Path, app: str, existing: list[tuple[str, Path]], tool: str, history: list[SourceMigration]
) -> list[PlannedMigration]:
    """The files to write into `folder` (the app's migrations folder): numbered after the highest
    number among `existing` (ID, path) migrations. Refuses a history imported before, and any
    file that exists already."""
    already = {}
    for _, path in existing:
        source = source_of(path)
        if source and source[0] == tool:
            already[source[1]] = path
    for migration in history:
        if migration.version in already:
            raise UserError(
                f"{tool} migration {migration.source} was imported already ({already[migration.version].name}); "
                "nothing written"
            )
    numbers = [number_of(migration_id) for migration_id, _ in existing]
    next_number = max((n for n in numbers if n is not None), default=0) + 1
    planned = []
    for offset, migration in enumerate(history):
        # Numbered as `make db-migrate-create` numbers (at least three digits, then as many as the
        # number has: 999, 1000): migrations apply by number, so no width could ever misorder them.
        migration_id = f"{next_number + offset:03d}_{migration_name(migration.name)}"
        stem = folder / f"{app}_{migration_id}"
        files = {stem.with_name(stem.name + ".py"): python_source(app, migration_id, tool, migration)}
        files[stem.with_name(stem.name + ".up.sql")] = migration.up
        if migration.up_is_empty and migration.down_is_empty:
            files[stem.with_name(stem.name + ".down.sql")] = NOTHING_TO_UNDO
        elif not migration.down_is_empty:
            files[stem.with_name(stem.name + ".down.sql")] = migration.down or ""
        planned.append(PlannedMigration(migration, migration_id, files))
    for item in planned:
        for path in item.files:
            if path.exists():
                raise UserError(f"{path.name} exists already: refusing to write over it; nothing written")
    return planned


def write(planned: list[PlannedMigration]) -> None:
    for item in planned:
        for path, content in item.files.items():
            with open(path, "x", encoding="utf-8", newline="") as f:  # "x": never over an existing file
                f.write(content)


def python_source(
    app: str, migration_id: str, tool: str, migration: SourceMigration, squawk_rules: list[str] | None = None
) -> str:
    description = f"Imported from {tool} {migration.source.split(' + ')[0]}"
    docstring = description.replace("\\", "/").replace('"', "'")
    arguments = f'migration_id=ID, app_name="{app}", description=DESCRIPTION'
    if not migration.transactional:
        arguments += ", wrap_in_transaction=False"
    call = f"    manager = SQLMigration({arguments})"
    if len(call) > 120:  # as `ruff format` would write it
        lines = "".join(f"        {argument.strip()},\n" for argument in arguments.split(","))
        call = f"    manager = SQLMigration(\n{lines}    )"
    return (
        f'"""{docstring}"""\n\n'
        "from dbmigrate.sql import SQLMigration\n\n"
        f"{_assign('ID', migration_id)}"
        f"{_assign('VERSION', MIGRATION_FILE_VERSION)}"
        f"{_assign('DESCRIPTION', description)}"
        f"{_assign('SOURCE_TOOL', tool)}"
        f"{_assign('SOURCE_VERSION', migration.version)}"
        f"{_squawk_exempt(tool, squawk_rules or [])}\n\n"
        "async def forwards():\n"
        f"{call}\n"
        f"{_body(migration)}"
    )


# A source migration whose up and down hold no statement is a no-op both ways: no steps at all; its
# .up.sql (and .down.sql) stay beside it, verbatim, for the record. One whose up is empty but whose
# down does something keeps the source tool's meaning: applying runs nothing, rolling back runs
# the down (as dbmate, golang-migrate and node-pg-migrate would).
_SQL_FILES = "    return manager.sql_files(__file__)\n"
_NO_STATEMENT = (
    "    # The source migration holds no statement (see the .up.sql beside this file): nothing runs, either way.\n"
    "    return manager\n"
)
_EMPTY_UP = (
    "    # The source's up holds no statement: applying it runs nothing; rolling back runs the .down.sql.\n"
    "    return manager.sql_files(__file__, empty_forwards=True)\n"
)


def _body(migration: SourceMigration) -> str:
    if not migration.up_is_empty:
        return _SQL_FILES
    return _NO_STATEMENT if migration.down_is_empty else _EMPTY_UP


def _squawk_exempt(tool: str, rules: list[str]) -> str:
    """SQUAWK_EXEMPT for what squawk finds in SQL that ran already: db-verify's lint is for new SQL."""
    if not rules:
        return ""
    reason = _literal(f"imported from {tool}: applied already, and history is not rewritten")
    return "SQUAWK_EXEMPT = {\n" + "".join(f"    {_literal(rule)}: {reason},\n" for rule in sorted(rules)) + "}\n"


_SQUAWK_FINDING = re.compile(r"^(?P<file>.+?):\d+:\d+: (?:warning|error): (?P<rule>[a-z0-9-]+) ")


def squawk_rules(root: Path, planned: list[PlannedMigration]) -> dict[int, list[str]] | None:
    """The squawk rules each planned migration's up SQL breaks (by index in `planned`), linted as
    db-verify lints it (the project's .squawk.toml; in a transaction when the migration is); None
    when squawk is not installed."""
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(squawk).exists():
        return None
    found: dict[int, set[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for transactional in (True, False):
            paths = {}
            for index, item in enumerate(planned):
                if item.source.transactional == transactional and not item.source.up_is_empty:
                    path = Path(folder) / f"{index}.sql"
                    path.write_text(item.source.up, encoding="utf-8")
                    paths[str(path)] = index
            if not paths:
                continue
            command = [squawk, "--reporter=gcc", *_squawk_config(root), *paths]
            if transactional:
                command.append("--assume-in-transaction")
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            for line in result.stdout.splitlines():
                match = _SQUAWK_FINDING.match(line)
                if match and match.group("file") in paths:
                    found.setdefault(paths[match.group("file")], set()).add(match.group("rule"))
    return {index: sorted(rules) for index, rules in found.items()}


def _squawk_config(root: Path) -> list[str]:
    config = root / ".squawk.toml"
    return [f"--config={config}"] if config.is_file() else []


def _assign(name: str, value: str) -> str:
    """`NAME = "value"` exactly as `ruff format` writes it (so `make lint` passes as generated):
    double quotes unless the value holds more double than single quotes, and in parentheses only
    when that makes a too-long line fit."""
    literal = _literal(value)
    line = f"{name} = {literal}"
    if len(line) <= 120 or len(literal) + 4 > 120:
        return line + "\n"
    return f"{name} = (\n    {literal}\n)\n"


def _literal(value: str) -> str:
    quote = "'" if value.count('"') > value.count("'") else '"'
    escaped = "".join(
        "\\" + c if c in ("\\", quote) else c if c.isprintable() else c.encode("unicode_escape").decode() for c in value
    )
    return f"{quote}{escaped}{quote}"


def import_history(settings: Settings, database: Database, folder: Path, format: str | None) -> list[Path]:
    """`make db-migrate-import`: write `folder`'s history as migrations of `database`, after its
    existing ones. Writes nothing unless every file can be written."""
    tool, history = read_history(folder, format)
    root = settings.project_root
    existing = [(m.id, m.path) for m in files.discover(root, database)]
    planned = plan(files.migrations_folder(root, database), database.app, existing, tool, history)
    rules = squawk_rules(root, planned)
    for index, broken in (rules or {}).items():
        item = planned[index]
        py = next(path for path in item.files if path.suffix == ".py")
        item.files[py] = python_source(database.app, item.migration_id, tool, item.source, broken)
    write(planned)
    notes = []
    outside = sum(1 for item in planned if not item.source.transactional)
    irreversible = sum(1 for item in planned if not item.source.reversible)
    if outside:
        notes.append(f"{outside} run outside a transaction")
    if irreversible:
        notes.append(f"{irreversible} cannot be rolled back")
    if rules is None:
        notes.append("squawk is not installed, so db-verify will lint their SQL: run `make venv`, import again")
    elif rules:
        notes.append(f"{len(rules)} exempt what squawk finds in their SQL from db-verify's lint")
    say(
        f"{database.name}: imported {len(planned)} {tool} migration(s) as {planned[0].migration_id} .. "
        f"{planned[-1].migration_id} into {files.migrations_folder(root, database).relative_to(root)}"
        + (f" ({'; '.join(notes)})" if notes else "")
    )
    return [path for item in planned for path in item.files]
