"""Test fixtures: every test gets its own three databases on a real PostgreSQL server.

The server is ORION_TEST_DATABASE_URL's (any database on it; we create ours beside it) when set,
else the pytest plugin's test cluster (an embedded server of the chosen major in /dev/shm, tuned
for tests, never the development server). Each test's databases carry a unique prefix and are
dropped afterwards, so tests run in parallel (pytest -n) without sharing state, and one failure
never cascades. The helpers live in dbmigrate.testing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_server import PrivateServer, start_private_server

from dbmigrate import connection
from dbmigrate.config import DATABASES
from dbmigrate.pytest_plugin import settings_for_tests
from dbmigrate.testing import (  # noqa: F401 - tests import these from conftest too
    BOOKKEEPING_TABLES,
    ROOT,
    Databases,
    catalog_of,
    copy_project,
    fresh_databases,
    migration_ids,
    run_sql,
    with_connection,
)

PRIVATE_SERVER_PASSWORD = "s3cret-pw/with:odd@chars"


def _server_url() -> str:
    """The maintenance database of the server the plugin's template databases live on."""
    settings = settings_for_tests()
    asyncio.run(connection.prepare(settings))
    return connection.server_url(settings, DATABASES["orion"])


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture
def dbs(server_url: str) -> Iterator[Databases]:
    """Three empty databases (orion, rfq, marketdata) for this test alone."""
    with fresh_databases(server_url) as databases:
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
    with fresh_databases(private_server.url()) as databases:
        yield databases


@pytest.fixture
def project(tmp_path: Path, dbs: Databases) -> Path:
    """A copy of the project to add migration files to; `dbs` commands then run inside it."""
    dbs.cwd = copy_project(tmp_path)
    return tmp_path
