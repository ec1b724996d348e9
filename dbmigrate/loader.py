"""The loader: which migration files each database has, read as text, imported only when needed.

A migration is a Python file in `<app>/piccolo_migrations/` with a line `ID = "..."`; migrations
run in `sorted()` order of their IDs, as Piccolo orders them. IDs are read with a regular
expression, so finding out that nothing is pending never imports Piccolo. Importing a file
(to run it) happens in `load_manager`, under a module name unique to its app: Piccolo's own
loader imports files as top-level modules, where equal names in two apps would collide.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dbmigrate.config import Database, postgres_duration
from dbmigrate.errors import UserError

if TYPE_CHECKING:
    from dbmigrate.migration import Migration

MIGRATIONS_FOLDER = "piccolo_migrations"
UP_SUFFIX = ".up.sql"  # SQLMigration.sql_files(__file__) reads <stem>.up.sql and <stem>.down.sql
DOWN_SUFFIX = ".down.sql"
_ID_LINE = re.compile(r"""^ID\s*(?::\s*str\s*)?=\s*(['"])(?P<id>[^'"\n]+)\1""", re.MULTILINE)
_NUMBERED_ID = re.compile(r"^(?P<number>\d+)_")


@dataclass(frozen=True)
class MigrationFile:
    app: str
    id: str
    path: Path
    checksum: str  # sha256 of the file and its .up.sql/.down.sql, line endings normalised: what "modified" is judged by

    @property
    def number(self) -> int | None:
        """The sequential number of an ID like `002_add_x`, or None for a timestamp ID."""
        match = _NUMBERED_ID.match(self.id)
        return int(match.group("number")) if match else None

    def relative_path(self, root: Path) -> str:
        try:
            return str(self.path.relative_to(root))
        except ValueError:
            return str(self.path)


def migrations_folder(root: Path, database: Database) -> Path:
    return root / database.app / MIGRATIONS_FOLDER


def discover(root: Path, database: Database) -> list[MigrationFile]:
    """Every migration of `database`, in the order they apply. Two files with one ID are an error."""
    folder = migrations_folder(root, database)
    if not folder.is_dir():
        raise UserError(f"{folder.relative_to(root)} does not exist: the {database.app} app has no migrations folder")
    found: dict[str, MigrationFile] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        content = path.read_bytes()
        match = _ID_LINE.search(content.decode("utf-8", errors="replace"))
        if not match:
            raise UserError(f'{path.relative_to(root)} has no ID line: add ID = "{implied_id(path, database.app)}"')
        migration = MigrationFile(
            app=database.app, id=match.group("id"), path=path, checksum=file_checksum(path, content)
        )
        twin = found.get(migration.id)
        if twin:
            raise UserError(
                f"two migrations of {database.app} have the ID {migration.id!r}: "
                f"{twin.relative_path(root)} and {migration.relative_path(root)}; renumber one"
            )
        found[migration.id] = migration
    return sorted(found.values(), key=lambda m: m.id)


def sibling_sql_files(migration_file: Path) -> list[Path]:
    """The .up.sql / .down.sql files that belong to `migration_file` (covered by its checksum)."""
    candidates = (migration_file.with_name(migration_file.stem + s) for s in (UP_SUFFIX, DOWN_SUFFIX))
    return [path for path in candidates if path.is_file()]


def implied_id(path: Path, app: str) -> str:
    """The ID a file's name implies: `orion_003_add_x.py` -> `003_add_x`."""
    stem = path.stem
    return stem[len(app) + 1 :] if stem.startswith(f"{app}_") else stem


def checksum(content: bytes) -> str:
    return hashlib.sha256(content.replace(b"\r\n", b"\n")).hexdigest()


def file_checksum(path: Path, content: bytes) -> str:
    """The checksum of a migration: its .py alone (as before sibling files existed), or the .py and
    its sibling SQL files, each with its name, so a changed or renamed .sql file counts too."""
    siblings = sibling_sql_files(path)
    if not siblings:
        return checksum(content)
    parts = [content] + [s.name.encode() + b"\0" + s.read_bytes() for s in siblings]
    return checksum(b"\0".join(parts))


async def load(migration: MigrationFile, root: Path) -> Migration:
    """Import `migration` and build it as the kind of Migration its manager is (migration.py)."""
    from dbmigrate.migration import MigrationOptions, PiccoloOperations, SQLSteps
    from dbmigrate.sql import SQLMigration

    module, manager = await _load_module_and_manager(migration, root)
    where = migration.relative_path(root)

    def option(name: str, kind: type):
        value = getattr(module, name, None)
        if value is not None and not isinstance(value, kind):
            raise UserError(f"migration {where}: {name} must be a {kind.__name__}, not {value!r}")
        return value

    lock_timeout, statement_timeout = option("LOCK_TIMEOUT", str), option("STATEMENT_TIMEOUT", str)
    options = MigrationOptions(
        lock_timeout=postgres_duration(lock_timeout, f"{where}: LOCK_TIMEOUT") if lock_timeout else None,
        statement_timeout=(
            postgres_duration(statement_timeout, f"{where}: STATEMENT_TIMEOUT") if statement_timeout else None
        ),
        lock_retries=option("LOCK_RETRIES", int),
        squawk_exempt=option("SQUAWK_EXEMPT", dict) or {},
    )
    if isinstance(manager, SQLMigration):
        return SQLSteps(migration, options, manager)
    return PiccoloOperations(migration, options, manager)


async def _load_module_and_manager(migration: MigrationFile, root: Path):
    # The checksum is part of the name: a file changed since it was imported is imported again.
    module_name = f"dbmigrate_migrations.{migration.app}.{migration.path.stem}_{migration.checksum[:12]}"
    try:
        module = sys.modules.get(module_name) or _import(module_name, migration.path)
        manager = await module.forwards()
    except Exception as error:
        raise UserError(
            f"migration {migration.relative_path(root)} does not load: {_where_in(error, migration.path)}"
            f"{type(error).__name__}: {error}"
        ) from None
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

    if not isinstance(manager, MigrationManager):
        raise UserError(f"migration {migration.relative_path(root)}: forwards() must return a MigrationManager")
    return module, manager


def _import(module_name: str, path: Path):
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _where_in(error: BaseException, path: Path) -> str:
    """`line N: ` of the deepest frame inside `path`, so the user can go straight there."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f"line {error.lineno}: "
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return f"line {lines[-1]}: " if lines else ""
