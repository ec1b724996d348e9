"""The loader: a migration file imported and built as the kind of Migration its manager is.

Importing a file (to run it) happens only here, under a module name unique to its app and its
checksum: Piccolo's own loader imports files as top-level modules, where equal names in two apps
would collide, and a file changed since it was imported must be imported again. The loader is the
only code that tells the kinds of migration apart (sql_migration.SQLSteps, staged.StagedSteps,
piccolo_migration.PiccoloOperations). A migration's code cannot end the run: `sys.exit()` or
KeyboardInterrupt at import or in forwards() is a load error naming the file, like any exception.
The module is compiled from the bytes the scan hashed, and its `sql_files()` reads the SQL the scan
hashed (files.MigrationFile.sources): what runs is what the checksum covers, never a later edit.
"""

from __future__ import annotations

import importlib.machinery
import sys
import traceback
import types
from pathlib import Path

from dbmigrate.core.config import postgres_duration
from dbmigrate.core.errors import UserError
from dbmigrate.core.text import decode_utf8, read_bytes
from dbmigrate.engine import files
from dbmigrate.engine.files import MigrationFile, sibling_sql_files
from dbmigrate.engine.migration import ENDS_THE_RUN, Migration, MigrationOptions
from dbmigrate.engine.sql_migration import SQLMigration, SQLSteps
from dbmigrate.engine.staged import StagedMigration, StagedSteps


async def load(migration: MigrationFile) -> Migration:
    """Import `migration` and build it as the kind of Migration its manager is (migration.py)."""
    # The files as the scan read and hashed them (files.MigrationFile.sources); every one is UTF-8.
    sources = migration.sources or {
        path.name: read_bytes(path) for path in (migration.path, *sibling_sql_files(migration.path))
    }
    for name, content in sources.items():
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:  # worded, naming the file and the line
            decode_utf8(content, str(Path(migration.shown).with_name(name)))
    module, manager = await _load_module_and_manager(migration, sources)
    where = migration.shown

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
        safety_accepted=option("SAFETY_ACCEPTED", dict) or {},
        source_tool=option("SOURCE_TOOL", str),
    )
    if isinstance(manager, StagedMigration):  # an SQLMigration too: test it first
        return StagedSteps(migration, options, manager)
    if isinstance(manager, SQLMigration):
        return SQLSteps(migration, options, manager)
    return _piccolo_operations(migration, options, manager)


def _piccolo_operations(migration: MigrationFile, options: MigrationOptions, manager) -> Migration:
    """A plain Piccolo migration. Imported here, not at the top: Piccolo's tables and commands (and
    black) take about 250 ms to import, which a history of SQL migrations never needs."""
    from dbmigrate.engine.piccolo_engine import order_by_number
    from dbmigrate.engine.piccolo_migration import PiccoloOperations

    order_by_number()  # Piccolo's snapshot (drop_column's backwards reads it) in dbmigrate's order
    return PiccoloOperations(migration, options, manager)


async def _load_module_and_manager(migration: MigrationFile, sources):
    # The checksum is part of the name: a file changed since it was imported is imported again.
    module_name = f"dbmigrate_migrations.{migration.app}.{migration.path.stem}_{migration.checksum[:12]}"
    try:
        module = sys.modules.get(module_name) or _import(module_name, migration.path, sources[migration.path.name])
        with files.loading(migration):  # sql_files() reads the .sql files the checksum covers
            manager = await module.forwards()
    except ENDS_THE_RUN as stop:
        code = f"({stop.code!r})" if isinstance(stop, SystemExit) else ""
        raise UserError(
            f"migration {migration.shown} does not load: {_where_in(stop, migration.path)}"
            f"its code raised {type(stop).__name__}{code}, which would end the run: raise an exception "
            "saying what is wrong instead; nothing was applied"
        ) from None
    except Exception as error:
        raise UserError(
            f"migration {migration.shown} does not load: {_where_in(error, migration.path)}"
            f"{type(error).__name__}: {error}"
        ) from None
    if not isinstance(manager, SQLMigration) and not _is_piccolo_manager(manager):
        raise UserError(f"migration {migration.shown}: forwards() must return a MigrationManager")
    return module, manager


def _is_piccolo_manager(manager) -> bool:
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager  # see _piccolo_operations

    return isinstance(manager, MigrationManager)


def _import(module_name: str, path: Path, source: bytes):
    """The module of `path`, run from `source` (the bytes its checksum covers) as the import system would."""
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    module.__spec__ = importlib.machinery.ModuleSpec(module_name, None, origin=str(path))
    sys.modules[module_name] = module
    try:
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
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
