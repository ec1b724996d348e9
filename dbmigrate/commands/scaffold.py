"""The text of new migration files: an SQL migration skeleton, or Piccolo's auto-migration.

Auto migrations reuse Piccolo's own machinery (schema snapshot, differ, template); only the ID and
the file name are ours (sequential numbers instead of timestamps), and the text is formatted with
the project's own formatter (ruff), so a generated file passes `make lint` as written and its
checksum never has to change after generation.

The skeleton's SQL is only comments: `migrate` refuses it until the change is written, and its
empty backwards SQL makes it irreversible until the undo is written (or NOTHING_TO_UNDO is). Its
commented examples are the safe forms (a constraint NOT VALID, then validated; an index built
CONCURRENTLY in a TRANSACTION=0 migration), never a form that locks a busy table.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import shutil
import subprocess
import sys
from itertools import chain
from pathlib import Path

from dbmigrate.engine.sql_migration import MIGRATION_FILE_VERSION

SQL_TEMPLATE = '''"""{description}"""

from dbmigrate.sql import SQLMigration

ID = "{migration_id}"
VERSION = "{version}"
DESCRIPTION = "{description}"
{note}
FORWARDS_SQL = """
{forwards}"""

BACKWARDS_SQL = """
{backwards}-- If undoing it needs no SQL, say so: BACKWARDS_SQL = NOTHING_TO_UNDO (from dbmigrate.sql).
"""


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="{app}", description=DESCRIPTION{transaction_argument})
    # When this changes a table of {app}/tables.py, describe the same change to Piccolo here
    # (e.g. manager.add_column(...)) so `make db-migrate-create AUTO=1` stays in step.
    manager.sql(forwards=FORWARDS_SQL, backwards=BACKWARDS_SQL)
    return manager
'''

# The examples are the forms that keep a busy table available (and pass `make db-verify`'s lint):
# a transactional migration takes its locks until it commits, so a constraint goes in NOT VALID
# (no scan under the lock) and is validated by a later migration; an index is built CONCURRENTLY,
# which cannot run in a transaction, so it has a migration of its own (TRANSACTION=0).
TRANSACTIONAL_FORWARDS = """\
-- The change, in one transaction with its bookkeeping. For example:
--   ALTER TABLE users ADD COLUMN phone VARCHAR(50);
-- A constraint on a table that has rows: add it NOT VALID here (no scan while the lock is held),
--   ALTER TABLE users ADD CONSTRAINT users_phone_not_empty CHECK (phone <> '') NOT VALID;
-- and validate it in a later migration (VALIDATE lets reads and writes go on while it scans):
--   ALTER TABLE users VALIDATE CONSTRAINT users_phone_not_empty;
-- An index on a table that has rows does not belong here (CREATE INDEX blocks writes while it
-- builds): write it CONCURRENTLY in a migration of its own, `make db-migrate-create TRANSACTION=0`.
"""
TRANSACTIONAL_BACKWARDS = """\
-- What undoes it exactly, last change first. For the examples above:
--   ALTER TABLE users DROP CONSTRAINT users_phone_not_empty;
--   ALTER TABLE users DROP COLUMN phone;
"""
NON_TRANSACTIONAL_FORWARDS = """\
-- The change, one statement per concern. For example, an index built without blocking writes:
--   CREATE INDEX CONCURRENTLY idx_users_phone ON users (phone);
-- If it fails midway it leaves an INVALID index behind: drop it (DROP INDEX CONCURRENTLY) and
-- migrate again.
"""
NON_TRANSACTIONAL_BACKWARDS = """\
-- What undoes it exactly. For the example above:
--   DROP INDEX CONCURRENTLY idx_users_phone;
"""
NON_TRANSACTIONAL_NOTE = """
# Not transactional: each statement runs and commits on its own (CREATE INDEX CONCURRENTLY and
# the like). Keep one concern per migration; if a statement fails, the ones before it stay done
# and `make db-migrate-status` says which ran last.
"""


def sql_migration_source(app: str, migration_id: str, name: str, transactional: bool = True) -> str:
    return SQL_TEMPLATE.format(
        app=app,
        migration_id=migration_id,
        version=MIGRATION_FILE_VERSION,
        description=name.replace("_", " "),
        transaction_argument="" if transactional else ", wrap_in_transaction=False",
        note="" if transactional else NON_TRANSACTIONAL_NOTE,
        forwards=TRANSACTIONAL_FORWARDS if transactional else NON_TRANSACTIONAL_FORWARDS,
        backwards=TRANSACTIONAL_BACKWARDS if transactional else NON_TRANSACTIONAL_BACKWARDS,
    )


async def auto_migration_source(app: str, migration_id: str, name: str, root: Path | None = None) -> str | None:
    """Piccolo's auto-migration from the diff of tables.py against the migrations; None if no diff."""
    from piccolo.apps.migrations.commands.new import AutoMigrationManager, render_template
    from piccolo.conf.apps import Finder

    from dbmigrate.engine.piccolo_engine import in_framework, order_by_number, piccolo_prints

    order_by_number()  # the schema snapshot Piccolo diffs against, in dbmigrate's order

    # Piccolo asks about renames on stdin; without a terminal, answer "no" rather than hang.
    auto_input = None if sys.stdin.isatty() else "n"
    with in_framework(), piccolo_prints():  # the framework's app registry; Piccolo's table of counts is noise
        app_config = Finder().get_app_config(app_name=app)
        alter_statements = await AutoMigrationManager(auto_input=auto_input).get_alter_statements(app_config=app_config)
    statements = list(chain(*[s.statements for s in alter_statements]))
    if not statements:
        return None
    source = render_template(
        migration_id=migration_id,
        auto=True,
        alter_statements=statements,
        extra_imports=sorted(set(chain(*[s.extra_imports for s in alter_statements])), key=repr),
        extra_definitions=sorted(set(chain(*[s.extra_definitions for s in alter_statements]))),
        app_name=app,
        description=name.replace("_", " "),
    )
    return formatted(compact(source), root)


def compact(source: str) -> str:
    """Leave out what Piccolo would assume anyway, as Django's migration writer does: column
    parameters equal to the column class's defaults, and keyword arguments equal to the
    MigrationManager method's defaults. Replaying the file gives the same columns (Piccolo builds
    each one as `column_class(**params)`), so diffs and the database are unchanged."""
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

    def same(node: ast.AST, default_text: str | None) -> bool:
        return ast.get_source_segment(source, node) == default_text

    offsets = _line_offsets(source)
    drop: list[tuple[int, int]] = []  # character spans of "name=value" / "key: value" to remove
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):  # `class User(Table, tablename="users", schema=None)`
            drop += [_span(k, k, offsets) for k in node.keywords if k.arg == "schema" and same(k.value, "None")]
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):  # `UUID(default=UUID4(), null=False, ...)` in a referenced table
            defaults = column_defaults(node.func.id)
        elif isinstance(node.func, ast.Attribute) and hasattr(MigrationManager, node.func.attr):
            defaults = _defaults(getattr(MigrationManager, node.func.attr))
        else:
            continue
        column = next((column_defaults(k.value.id) for k in node.keywords if _names_column_class(k)), {})
        for keyword in node.keywords:
            if same(keyword.value, defaults.get(keyword.arg)):
                drop.append(_span(keyword, keyword, offsets))
            elif keyword.arg == "params" and isinstance(keyword.value, ast.Dict):  # add_column's column params
                items = zip(keyword.value.keys, keyword.value.values, strict=True)
                drop += [_span(k, v, offsets) for k, v in items if same(v, column.get(getattr(k, "value", None)))]
    for start, end in sorted(drop, reverse=True):
        source = source[:start] + source[end + len(re.match(r" *(, *)?", source[end:])[0]) :]
    # An item removed last leaves "x, )" behind (Piccolo joins items with ", " on one line), or a
    # comma before a closing bracket on a later line in formatted text.
    return re.sub(r",(\s*)([})])", _close, source)


def _close(match: re.Match) -> str:
    """Drop the comma before a closing bracket, unless it makes a one-element tuple: `(x,)`."""
    return match.group(1) + match.group(2) if match.group(1) or match.group(2) == "}" else match.group(0)


def _line_offsets(source: str) -> list[int]:
    offsets, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        offsets.append(total)
    return offsets


def _span(first: ast.AST, last: ast.AST, offsets: list[int]) -> tuple[int, int]:
    """Character offsets from the start of `first` to the end of `last`."""
    return offsets[first.lineno - 1] + first.col_offset, offsets[last.end_lineno - 1] + last.end_col_offset


@functools.cache
def _defaults(function) -> dict[str, str]:
    """Parameter name -> the source text of its default, as Piccolo serialises values."""
    from piccolo.apps.migrations.auto.serialisation import serialise_params

    values = {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and parameter.default is not Ellipsis
    }
    try:
        serialised = serialise_params(values).params
    except Exception:  # a default Piccolo cannot serialise is simply kept
        return {}
    return {name: repr(value) for name, value in serialised.items()}


@functools.cache
def column_defaults(class_name: str) -> dict[str, str]:
    """The defaults of Piccolo column class `class_name` (its own and Column's), or {} for any other name."""
    from piccolo.columns import Column, column_types

    column_class = getattr(column_types, class_name, None)
    if not (isinstance(column_class, type) and issubclass(column_class, Column)):
        return {}
    return {**_defaults(Column.__init__), **_defaults(column_class.__init__)}


def _names_column_class(keyword: ast.keyword) -> bool:
    """`column_class=Varchar` in an add_column call."""
    return keyword.arg == "column_class" and isinstance(keyword.value, ast.Name)


def formatted(source: str, root: Path | None) -> str:
    """`source` as `ruff format` (the project's formatter, with its settings) writes it, without
    imports that compacting left unused."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        import black

        return black.format_str(source, mode=black.FileMode(line_length=120))
    for command in (["check", "--select", "F401,I001", "--fix", "--quiet", "--exit-zero"], ["format"]):
        result = subprocess.run(
            [ruff, *command, "--stdin-filename", "migration.py", "-"],
            input=source,
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
        )
        if result.returncode == 0 and result.stdout:
            source = result.stdout
    return source
