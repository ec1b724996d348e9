"""Helpers for tests of dbmigrate and of Orion services: databases of their own on a real server, the
CLI run against them, and migration files written into a copy of the project.

tests/conftest.py turns these into fixtures; bench/run.py uses them too. (Django keeps its test
helpers in django.test, Alembic in alembic.testing: the same idea.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from dbmigrate.core.config import DATABASES
from dbmigrate.core.urls import with_database
from dbmigrate.server.catalog import schema_catalog

# This checkout (the package is installed editable), or the one ORION_PROJECT_ROOT names.
ROOT = Path(os.environ.get("ORION_PROJECT_ROOT") or Path(__file__).resolve().parents[2]).resolve()
# What a copy of a project needs to migrate and seed.
PROJECT_FILES = ["piccolo_conf.py", ".squawk.toml", "schema", "seeds", "common", *DATABASES]
BOOKKEEPING_TABLES = {"migration", "dbmigrate_history"}


def with_connection(url: str, work):
    """`await work(connection)` on a fresh connection to `url`, from synchronous test code."""

    async def go():
        conn = await asyncpg.connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def run_sql(url: str, sql: str, *args):
    """Run one query on `url` and return its rows."""
    return with_connection(url, lambda conn: conn.fetch(sql, *args))


def catalog_of(url: str) -> dict:
    """The schema of the database at `url`, as db-verify compares it."""
    return with_connection(url, schema_catalog)


@dataclass
class Databases:
    """This test's three databases and a way to run the CLI against them."""

    server_url: str
    prefix: str
    cwd: Path = ROOT  # the project the CLI runs in (tests give a copy of a fixture project)
    extra_env: dict[str, str] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return with_database(self.server_url, f"{self.prefix}_{DATABASES[name].default_dbname}")

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k != "ORION_ENV"}
        env.update({db.url_variable: self.url(db.name) for db in DATABASES.values()})
        env.update(ORION_ENV="test", PYTHONDONTWRITEBYTECODE="1")
        env.update(self.extra_env)
        return env

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "dbmigrate", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def cli(self, *args: str, expect: int = 0, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `python -m dbmigrate ARGS`; fail the test unless it exits with `expect`."""
        result = subprocess.run(
            [sys.executable, "-m", "dbmigrate", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == expect, (
            f"dbmigrate {' '.join(args)} exited {result.returncode}, expected {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def sql(self, name: str, query: str, *args):
        return run_sql(self.url(name), query, *args)

    def catalog(self, name: str) -> dict:
        return catalog_of(self.url(name))

    def applied(self, name: str) -> list[str]:
        """The bookkeeping rows of `name`, in the order written (duplicates would show)."""
        if not self.sql(name, "SELECT to_regclass('migration') IS NOT NULL AS present")[0]["present"]:
            return []
        rows = self.sql(name, "SELECT name FROM migration WHERE app_name = $1 ORDER BY id", DATABASES[name].app)
        return [r["name"] for r in rows]

    def tables(self, name: str) -> set[str]:
        rows = self.sql(name, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows} - BOOKKEEPING_TABLES


@contextmanager
def fresh_databases(server_url: str) -> Iterator[Databases]:
    databases = Databases(server_url=server_url, prefix=f"t{uuid.uuid4().hex[:10]}")
    for name in DATABASES:
        run_sql(server_url, f'CREATE DATABASE "{databases.prefix}_{DATABASES[name].default_dbname}"')
    yield databases
    for name in DATABASES:
        run_sql(
            server_url, f'DROP DATABASE IF EXISTS "{databases.prefix}_{DATABASES[name].default_dbname}" WITH (FORCE)'
        )


def copy_project(destination: Path, source_root: Path = ROOT) -> Path:
    """The files a project needs to migrate, copied from `source_root` to `destination` (to add
    migration files to). Missing ones (a project without seeds) are skipped."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = source_root / name
        if not source.exists():
            continue
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination / name)
    return destination


# ---- migration files written into a copy of the project ----------------------------------------

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
