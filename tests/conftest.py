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
from pgbouncer_server import REQUIRED as PGBOUNCER_REQUIRED
from pgbouncer_server import binary as pgbouncer_binary
from private_server import PrivateServer, start_private_server
from support import FIXTURE_PROJECT, PRIVATE_SERVER_PASSWORD, Databases, copy_project, fresh_databases, make_ready

from dbmigrate.core.config import DATABASES
from dbmigrate.server import connection
from dbmigrate.testing import plugin
from dbmigrate.testing.plugin import settings_for_tests

# The plugin's own fixtures (orion_database_url, ...) in this test process build their templates
# from the fixture project too, never from the apps at the top of the repository.
plugin.use_project(FIXTURE_PROJECT)

# Projects that tests copy and run (the service fixture has tests of its own, run by its test).
collect_ignore = ["fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pgbouncer: needs a real PgBouncer (Debian's package pgbouncer)")
    config.addinivalue_line(
        "markers",
        "timing: bounds how long a workload waits; `make test` runs these alone, after the parallel suite, so "
        "the other tests' load on a small machine is not what it measures",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked pgbouncer is skipped where pgbouncer is not installed, saying so; in CI
    (ORION_REQUIRE_PGBOUNCER=1) it fails instead, so a CI run without PgBouncer is never green."""
    if item.get_closest_marker("pgbouncer") is None or pgbouncer_binary() is not None:
        return
    if PGBOUNCER_REQUIRED:
        pytest.fail("pgbouncer is not installed but ORION_REQUIRE_PGBOUNCER=1: install Debian's pgbouncer", False)
    pytest.skip("pgbouncer is not installed (Debian package pgbouncer; .ci/run installs it)")


def _server_url() -> str:
    """The maintenance database of the server the plugin's template databases live on."""
    settings = settings_for_tests()
    asyncio.run(connection.prepare(settings))
    return connection.server_url(settings, DATABASES["orion"])


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture
def dbs(server_url: str, tmp_path: Path) -> Iterator[Databases]:
    """Three empty databases (orion, rfq, marketdata) for this test alone, and a copy of the
    fixture project (in tmp_path) that its commands run in."""
    with fresh_databases(server_url) as databases:
        databases.cwd = make_ready(copy_project(tmp_path / "project", FIXTURE_PROJECT))
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
def tcp_dbs(private_server: PrivateServer, tmp_path: Path) -> Iterator[Databases]:
    """Like `dbs`, on the private server: TCP URLs with a password in them."""
    with fresh_databases(private_server.url()) as databases:
        databases.cwd = copy_project(tmp_path / "tcp_project", FIXTURE_PROJECT)
        yield databases


@pytest.fixture
def project(tmp_path: Path, dbs: Databases) -> Path:
    """The copy of the fixture project that `dbs` commands run in, to add migration files to."""
    return dbs.cwd


def _fixture_tree() -> dict[str, bytes]:
    return {
        str(p.relative_to(FIXTURE_PROJECT)): p.read_bytes()
        for p in sorted(FIXTURE_PROJECT.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


_FIXTURE_AT_START = _fixture_tree()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The fixture project is frozen: a test that wrote into it (instead of into its own copy) fails
    the whole run, naming the files."""
    if hasattr(session.config, "workerinput"):
        return
    now = _fixture_tree()
    changed = sorted(k for k in set(now) | set(_FIXTURE_AT_START) if now.get(k) != _FIXTURE_AT_START.get(k))
    if changed:
        print(f"\nerror: tests wrote into the frozen tests/fixtures/project: {', '.join(changed[:5])}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
