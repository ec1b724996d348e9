"""The text of new migration files: an SQL migration skeleton, or Piccolo's auto-migration.

Auto migrations reuse Piccolo's own machinery (schema snapshot, differ, template, black); only
the ID and the file name are ours (sequential numbers instead of timestamps).
"""

from __future__ import annotations

import sys
from itertools import chain

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
"""


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="{app}", description=DESCRIPTION)
    # When this changes a table of {app}/tables.py, describe the same change to Piccolo here
    # (e.g. manager.add_column(...)) so `make db-migrate-create AUTO=1` stays in step.
    manager.sql(forwards=FORWARDS_SQL, backwards=BACKWARDS_SQL)
    return manager
'''


def sql_migration_source(app: str, migration_id: str, name: str) -> str:
    return SQL_TEMPLATE.format(
        app=app, migration_id=migration_id, version=PICCOLO_VERSION, description=name.replace("_", " ")
    )


async def auto_migration_source(app: str, migration_id: str, name: str) -> str | None:
    """Piccolo's auto-migration from the diff of tables.py against the migrations; None if no diff."""
    import black
    from piccolo.apps.migrations.commands.new import AutoMigrationManager, render_template
    from piccolo.conf.apps import Finder

    app_config = Finder().get_app_config(app_name=app)
    # Piccolo asks about renames on stdin; without a terminal, answer "no" rather than hang.
    auto_input = None if sys.stdin.isatty() else "n"
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
    return black.format_str(source, mode=black.FileMode(line_length=82))
