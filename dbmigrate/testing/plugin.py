"""pytest fixtures for any Orion service: a fresh, fully migrated database for every test.

Installed with the package (entry point `pytest11`), so a service's tests just ask for
`orion_db`, `rfq_db` or `marketdata_db` (migrated, empty; `orion_reference_db`, ... with the
reference seed data loaded). Each yields a BoundDatabase (binding.py): a database of the test's
own, taken from a warm pool of clones of a template migrated once (templates.py), with every
Piccolo table of the app bound to it for the test, its asyncpg URL and a way to connect; it is
dropped after the test. Outside such a test the app's tables reach no database at all (they fail,
naming the fixture), so a test never touches a development database by accident.
`orion_database_url`, ... yield the URL alone. Safe under pytest-xdist.

The server is ORION_TEST_DATABASE_URL's when set, else the project's test cluster: an embedded
PostgreSQL of ORION_PG_VERSION in /dev/shm with fsync off (embedded.py), never the development
server. A session that found the test cluster stopped stops it when it ends and removes its data
(the last of several overlapping sessions does). Ctrl-C ends a session the same way, dropping the
interrupted test's database.

The migrations are the project's in whose folder (or below) pytest runs, else those installed
with the package (`pip install orion-dbmigrate`; config.find_project_root), else ORION_PROJECT_ROOT's.
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
from typing import TYPE_CHECKING

import pytest

from dbmigrate.core.config import DATABASES, Database, Settings, find_project_root, load_settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.urls import as_url, with_database

if TYPE_CHECKING:  # binding imports Piccolo's tables: only a test that uses them pays for it
    from dbmigrate.testing.binding import BoundDatabase

POOL_SIZE_VARIABLE = "ORION_TEST_POOL_SIZE"


_chosen_root: Path | None = None


def use_project(root: Path) -> None:
    """Build this process's templates from the project at `root` (dbmigrate's own test suite points
    it at its fixture project) instead of finding the project from ORION_PROJECT_ROOT or the cwd.
    In-process only: the CLI run in a subprocess still finds its project as a user's would."""
    global _chosen_root
    _chosen_root = root


def project_settings() -> Settings:
    """The Orion project's settings (its checkout, or the apps installed with the package)."""
    settings = load_settings(find_project_root(_chosen_root))
    if str(settings.project_root) not in sys.path:
        sys.path.append(str(settings.project_root))  # the apps (orion.tables, ...), after the service's own
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
            with _uncaptured():  # a first run downloads PostgreSQL: its line must reach the terminal
                _pool = ClonePool(settings_for_tests(), int(size) if size else DEFAULT_POOL_SIZE)
            atexit.register(close_pool)
        return _pool


_config: pytest.Config | None = None


@contextlib.contextmanager
def _uncaptured() -> Iterator[None]:
    """pytest's output capture suspended in the block (when pytest runs us)."""
    capture = _config.pluginmanager.getplugin("capturemanager") if _config is not None else None
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        yield


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


def _clone_of(database: Database, reference_data: bool) -> Iterator[str]:
    """The URL of a clone of `database`'s template for the test, dropped after it; a failure to make
    one fails the test in one line."""
    try:
        clones = pool()
        if reference_data:
            _refuse_without_reference_seeds(clones.settings, database)
        name = clones.acquire(database, reference_data)
    except UserError as error:
        pytest.fail(f"dbmigrate: {error}", pytrace=False)
    try:
        yield clones.url(name)
    finally:
        clones.release(name)


def _refuse_without_reference_seeds(settings: Settings, database: Database) -> None:
    """The package installs the apps but no seed files: a reference fixture there would be empty."""
    seeds = settings.project_root / "seeds" / "reference"
    if not seeds.is_dir():
        raise UserError(
            f"the {database.name} reference fixtures load seeds/reference/, which the installed package does not "
            f"carry (none in {settings.project_root}): ask for {database.name}_db instead, or set ORION_PROJECT_ROOT "
            "to a checkout of orion-dbmigrate"
        )


def _url_fixture(database: Database, reference_data: bool) -> tuple[str, Callable]:
    def fixture() -> Iterator[str]:
        yield from _clone_of(database, reference_data)

    content = "with its reference data loaded" if reference_data else "empty"
    fixture.__doc__ = f"URL of a fresh, fully migrated {database.name} database ({content}), dropped after the test."
    name = f"{database.name}_{'reference_database_url' if reference_data else 'database_url'}"
    return name, pytest.fixture(name=name)(fixture)


def _bound_fixture(database: Database, reference_data: bool) -> tuple[str, Callable]:
    def fixture() -> Iterator[BoundDatabase]:
        from dbmigrate.testing import binding

        for url in _clone_of(database, reference_data):
            with binding.bound(database.app, url) as bound:
                yield bound

    content = "with its reference data loaded" if reference_data else "empty"
    fixture.__doc__ = (
        f"A fresh, fully migrated {database.name} database ({content}) with every Piccolo table of "
        f"{database.app} bound to it for the test: .url (asyncpg), .engine, .connection(); dropped after."
    )
    name = f"{database.name}_{'reference_db' if reference_data else 'db'}"
    return name, pytest.fixture(name=name)(fixture)


for _database in DATABASES.values():
    for _reference in (False, True):
        for _name, _fixture in (_url_fixture(_database, _reference), _bound_fixture(_database, _reference)):
            globals()[_name] = _fixture


# ---- Tables bound only inside the tests that ask for them ---------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config


def pytest_collection_finish(session: pytest.Session) -> None:
    _guard_imported_apps()  # test modules imported orion.tables, ...: guarded from the start


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _guard_imported_apps()  # and any app a test imported since


def _guard_imported_apps() -> None:
    if any(f"{database.app}.tables" in sys.modules for database in DATABASES.values()):
        from dbmigrate.testing import binding

        binding.guard_imported_apps()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _config
    if "dbmigrate.testing.binding" in sys.modules:
        sys.modules["dbmigrate.testing.binding"].unguard()
    _config = None


# ---- The test cluster's lifetime: stopped and removed by the session that found it stopped ------


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


@pytest.hookimpl(trylast=True)  # after pytest tore the fixtures down (an interrupted test's too)
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
                embedded.remove_test_cluster(cluster)  # stopped, and its data (in RAM) gone
            state.clear()


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
    path = embedded.sessions_file(cluster)
    with locked(path.with_suffix(".lock")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        state = {
            "pids": [p for p in state.get("pids", []) if embedded.process_alive(p)],
            **{k: v for k, v in state.items() if k != "pids"},
        }
        yield state
        if state:
            path.write_text(json.dumps(state))
        else:  # the cluster was removed: so is everything of it, this file and its lock too
            embedded.remove_test_cluster_files(cluster)
