"""Writing extra migration files into a copy of the project, for tests that need them."""

from __future__ import annotations

from pathlib import Path

SQL_MIGRATION = """
from dbmigrate.sql import SQLMigration

ID = "{migration_id}"
VERSION = "1.38.0"
DESCRIPTION = "test migration"


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="{app}", description=DESCRIPTION,
                           wrap_in_transaction={transactional})
    manager.sql(forwards={forwards!r}, backwards={backwards!r})
    return manager
"""


def write_sql_migration(
    project: Path,
    app: str,
    migration_id: str,
    forwards: str,
    backwards: str | None,
    transactional: bool = True,
) -> Path:
    path = project / app / "piccolo_migrations" / f"{app}_{migration_id}.py"
    path.write_text(
        SQL_MIGRATION.format(
            migration_id=migration_id, app=app, forwards=forwards, backwards=backwards, transactional=transactional
        )
    )
    return path


def write_python_migration(project: Path, app: str, migration_id: str, body: str) -> Path:
    """A plain Piccolo migration whose forwards() body is `body` (it must return a manager)."""
    path = project / app / "piccolo_migrations" / f"{app}_{migration_id}.py"
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    path.write_text(
        "import os\n"
        "from piccolo.apps.migrations.auto.migration_manager import MigrationManager\n"
        "from piccolo.engine import engine_finder\n\n"
        f'ID = "{migration_id}"\nVERSION = "1.38.0"\nDESCRIPTION = ""\n\n\n'
        f"async def forwards():\n{indented}\n"
    )
    return path


def write_add_phone(project: Path, migration_id: str) -> Path:
    """A small reversible orion migration: users gets a phone column."""
    return write_sql_migration(
        project, "orion", migration_id, "ALTER TABLE users ADD COLUMN phone text", "ALTER TABLE users DROP COLUMN phone"
    )
