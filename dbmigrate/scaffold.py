"""The text of new migration files: an SQL migration skeleton, or Piccolo's auto-migration.

Auto migrations reuse Piccolo's own machinery (schema snapshot, differ, template); only the ID and
the file name are ours (sequential numbers instead of timestamps), and the text is formatted with
the project's own formatter (ruff), so a generated file passes `make lint` as written and its
checksum never has to change after generation.

The skeleton's SQL is only comments: `migrate` refuses it until the change is written, and its
empty backwards SQL makes it irreversible until the undo is written (or NOTHING_TO_UNDO is).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from itertools import chain
from pathlib import Path

from piccolo import __VERSION__ as PICCOLO_VERSION

SQL_TEMPLATE = '''"""{description}"""

from dbmigrate.sql import SQLMigration

ID = "{migration_id}"
VERSION = "{version}"
DESCRIPTION = "{description}"

FORWARDS_SQL = """
-- The change, e.g.: ALTER TABLE users ADD COLUMN phone VARCHAR(50);
"""

BACKWARDS_SQL = """
-- What undoes it exactly, e.g.: ALTER TABLE users DROP COLUMN phone;
-- If undoing it needs no SQL, say so: BACKWARDS_SQL = NOTHING_TO_UNDO (from dbmigrate.sql).
"""


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="{app}", description=DESCRIPTION{transaction_argument})
    # When this changes a table of {app}/tables.py, describe the same change to Piccolo here
    # (e.g. manager.add_column(...)) so `make db-migrate-create AUTO=1` stays in step.
    manager.sql(forwards=FORWARDS_SQL, backwards=BACKWARDS_SQL)
    return manager
'''

NON_TRANSACTIONAL_NOTE = """
# Not transactional: each statement runs and commits on its own (CREATE INDEX CONCURRENTLY and
# the like). Keep one concern per migration; if a statement fails, the ones before it stay done
# and `make db-migrate-status` says which ran last.
"""


def sql_migration_source(app: str, migration_id: str, name: str, transactional: bool = True) -> str:
    source = SQL_TEMPLATE.format(
        app=app,
        migration_id=migration_id,
        version=PICCOLO_VERSION,
        description=name.replace("_", " "),
        transaction_argument="" if transactional else ", wrap_in_transaction=False",
    )
    if not transactional:
        source = source.replace('\nFORWARDS_SQL = """', NON_TRANSACTIONAL_NOTE + 'FORWARDS_SQL = """', 1)
    return source


async def auto_migration_source(app: str, migration_id: str, name: str, root: Path | None = None) -> str | None:
    """Piccolo's auto-migration from the diff of tables.py against the migrations; None if no diff."""
    from piccolo.apps.migrations.commands.new import AutoMigrationManager, render_template
    from piccolo.conf.apps import Finder

    from dbmigrate.piccolo_engine import piccolo_prints

    app_config = Finder().get_app_config(app_name=app)
    # Piccolo asks about renames on stdin; without a terminal, answer "no" rather than hang.
    auto_input = None if sys.stdin.isatty() else "n"
    with piccolo_prints():  # its table of counts is noise here
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
    return formatted(source, root)


def formatted(source: str, root: Path | None) -> str:
    """`source` as `ruff format` (the project's formatter, with its settings) writes it."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        import black

        return black.format_str(source, mode=black.FileMode(line_length=120))
    result = subprocess.run(
        [ruff, "format", "--stdin-filename", "migration.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    return result.stdout if result.returncode == 0 else source
