"""pytest fixtures for any Orion service: a fresh, fully migrated database for every test.

Installed with the package (entry point `pytest11`), so a service's tests just ask for
`orion_database_url`, `rfq_database_url` or `marketdata_database_url` (migrated, empty), or
`orion_reference_database_url`, ... (migrated, with the reference seed data loaded). Each yields
the URL of a database of its own, taken from a warm pool of clones of a template migrated once
(template_databases.py), and dropped after the test. Safe under pytest-xdist.

The server is ORION_TEST_DATABASE_URL's when set, else the project's test cluster: an embedded
PostgreSQL of ORION_PG_VERSION in /dev/shm with fsync off (embedded.py), never the development
server. A session that found the test cluster stopped stops it when it ends (the last of several
overlapping sessions does).

In another repository, ORION_PROJECT_ROOT names a checkout of this one (whose migrations it applies).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dbmigrate.core.config import DATABASES, Database, Settings, find_project_root, load_settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.urls import as_url, with_database

POOL_SIZE_VARIABLE = "ORION_TEST_POOL_SIZE"


def project_settings() -> Settings:
    """The Orion project's settings, or a UserError naming ORION_PROJECT_ROOT."""
    configured = os.environ.get("ORION_PROJECT_ROOT")
    try:
        root = find_project_root()
    except UserError:
        if configured:
            raise UserError(
                f"ORION_PROJECT_ROOT={configured} is not the Orion migrations project (no piccolo_conf.py there "
                "or above): point it at a checkout of orion-dbmigrate"
            ) from None
        raise UserError(
            f"the Orion migrations project is not in {Path.cwd()} or above (no piccolo_conf.py): "
            "set ORION_PROJECT_ROOT to a checkout of orion-dbmigrate"
        ) from None
    settings = load_settings(root)
    if str(settings.project_root) not in sys.path:
        sys.path.insert(0, str(settings.project_root))  # migrations import piccolo_conf
    return settings


def cluster_for_tests(settings: Settings) -> Path:
    from dbmigrate.server import embedded

    return embedded.data_dir_for_tests(settings.embedded_data_root, settings.postgres_major)


def settings_for_tests() -> Settings:
    """The project's settings with every database on the test server: ORION_TEST_DATABASE_URL's,
    else the test cluster (started if needed)."""
    settings = project_settings()
    server = settings.get("ORION_TEST_DATABASE_URL")
    server = as_url(server, "ORION_TEST_DATABASE_URL") if server else None
    if not server:
        from dbmigrate.server import embedded

        running, _ = embedded.ensure_running(cluster_for_tests(settings), settings.postgres_major, for_tests=True)
        server = running.url("postgres")
    urls = {db.url_variable: with_database(server, db.default_dbname) for db in DATABASES.values()}
    return replace(settings, values={**settings.values, **urls})


_pool = None
_pool_guard = threading.Lock()


def pool():
    """This process's pool of ready clones (template_databases.ClonePool), made on first use."""
    global _pool
    with _pool_guard:
        if _pool is None:
            from dbmigrate.testing.templates import DEFAULT_POOL_SIZE, ClonePool

            size = os.environ.get(POOL_SIZE_VARIABLE, "")
            if size and not size.isdigit():
                raise UserError(f"{POOL_SIZE_VARIABLE}={size!r} is not a number of databases: set it to e.g. 2")
            _pool = ClonePool(settings_for_tests(), int(size) if size else DEFAULT_POOL_SIZE)
            atexit.register(close_pool)
        return _pool


def close_pool() -> None:
    global _pool
    with _pool_guard:
        current, _pool = _pool, None
    if current is not None:
        current.close()


def fresh_database(database: Database, reference_data: bool = False) -> Iterator[str]:
    """A new migrated copy of `database` (with its reference data) for the duration of the generator."""
    clones = pool()
    name = clones.acquire(database, reference_data)
    try:
        yield clones.url(name)
    finally:
        clones.release(name)


def _fixture_for(database: Database, reference_data: bool) -> Callable:
    def fixture() -> Iterator[str]:
        try:
            clones = pool()
            name = clones.acquire(database, reference_data)
        except UserError as error:
            pytest.fail(f"dbmigrate: {error}", pytrace=False)
        try:
            yield clones.url(name)
        finally:
            clones.release(name)

    content = "with its reference data loaded" if reference_data else "empty"
    fixture.__doc__ = f"URL of a fresh, fully migrated {database.name} database ({content}), dropped after the test."
    suffix = "reference_database_url" if reference_data else "database_url"
    return pytest.fixture(name=f"{database.name}_{suffix}")(fixture)


for _database in DATABASES.values():
    globals()[f"{_database.name}_database_url"] = _fixture_for(_database, reference_data=False)
    globals()[f"{_database.name}_reference_database_url"] = _fixture_for(_database, reference_data=True)


# ---- The test cluster's lifetime: stopped by the session that found it stopped ------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller decides
        return
    cluster = _our_test_cluster()
    if cluster is not None:
        from dbmigrate.server import embedded

        with _sessions(cluster) as state:
            state["pids"].append(os.getpid())
            if embedded.find_running(cluster) is None:
                state["stop_when_idle"] = True


def pytest_sessionfinish(session: pytest.Session) -> None:
    close_pool()
    if hasattr(session.config, "workerinput"):
        return
    cluster = _our_test_cluster()
    if cluster is None:
        return
    from dbmigrate.server import embedded

    with _sessions(cluster) as state:
        state["pids"] = [pid for pid in state["pids"] if pid != os.getpid()]
        if not state["pids"] and state.get("stop_when_idle"):
            with contextlib.suppress(UserError):
                embedded.stop(cluster)
            state["stop_when_idle"] = False


def _our_test_cluster() -> Path | None:
    """The test cluster this session would use, or None (another server, or no Orion project here)."""
    try:
        settings = project_settings()
        return None if settings.get("ORION_TEST_DATABASE_URL") else cluster_for_tests(settings)
    except UserError:
        return None


@contextlib.contextmanager
def _sessions(cluster: Path) -> Iterator[dict]:
    """The sessions using `cluster` (pids, living ones only), read and written under a file lock."""
    from dbmigrate.server import embedded
    from dbmigrate.server.install import locked

    cluster.parent.mkdir(parents=True, exist_ok=True)
    path = cluster.parent / f".{cluster.name}.sessions.json"
    with locked(cluster.parent / f".{cluster.name}.sessions.lock"):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        state = {
            "pids": [p for p in state.get("pids", []) if embedded.process_alive(p)],
            **{k: v for k, v in state.items() if k != "pids"},
        }
        yield state
        path.write_text(json.dumps(state))
