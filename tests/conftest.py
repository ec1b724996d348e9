"""Test fixtures: every test gets its own three databases on a real PostgreSQL server.

The server is ORION_TEST_DATABASE_URL's (any database on it; we create ours beside it) when set,
else the configured one, else the project's embedded server, started on first use. Each test's databases carry a
unique prefix and are dropped afterwards, so tests run in parallel (pytest -n) without sharing
state, and one failure never cascades.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from private_server import PrivateServer, start_private_server

from dbmigrate import connection
from dbmigrate.catalog import schema_catalog
from dbmigrate.config import DATABASES
from dbmigrate.loader import discover
from dbmigrate.pytest_plugin import settings_for_tests
from dbmigrate.urls import with_database

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ["piccolo_conf.py", ".squawk.toml", "schema", *DATABASES]  # what a copy of the project needs
BOOKKEEPING_TABLES = {"migration", "dbmigrate_history"}
PRIVATE_SERVER_PASSWORD = "s3cret-pw/with:odd@chars"


def migration_ids(name: str, root: Path = ROOT) -> list[str]:
    """Every migration ID of database `name` in the project at `root`, in order."""
    return [m.id for m in discover(root, DATABASES[name])]


def _server_url() -> str:
    """The maintenance database of the server the plugin's template databases live on."""
    settings = settings_for_tests()
    asyncio.run(connection.prepare(settings))
    return connection.server_url(settings, DATABASES["orion"])


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


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
    cwd: Path = ROOT
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
def _fresh_databases(server_url: str) -> Iterator[Databases]:
    databases = Databases(server_url=server_url, prefix=f"t{uuid.uuid4().hex[:10]}")
    for name in DATABASES:
        run_sql(server_url, f'CREATE DATABASE "{databases.prefix}_{DATABASES[name].default_dbname}"')
    yield databases
    for name in DATABASES:
        run_sql(
            server_url, f'DROP DATABASE IF EXISTS "{databases.prefix}_{DATABASES[name].default_dbname}" WITH (FORCE)'
        )


@pytest.fixture
def dbs(server_url: str) -> Iterator[Databases]:
    """Three empty databases (orion, rfq, marketdata) for this test alone."""
    with _fresh_databases(server_url) as databases:
        yield databases


@pytest.fixture(scope="session")
def private_server() -> Iterator[PrivateServer]:
    """A password-protected server on TCP, private to this test process."""
    base = Path(tempfile.mkdtemp(prefix="orion-test-pg-"))
    server = start_private_server(base, PRIVATE_SERVER_PASSWORD)
    yield server
    with contextlib.suppress(Exception):
        server.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tcp_dbs(private_server: PrivateServer) -> Iterator[Databases]:
    """Like `dbs`, on the private server: TCP URLs with a password in them."""
    with _fresh_databases(private_server.url()) as databases:
        yield databases


@pytest.fixture
def project(tmp_path: Path, dbs: Databases) -> Path:
    """A copy of the project to add migration files to; `dbs` commands then run inside it."""
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    dbs.cwd = tmp_path
    return tmp_path
