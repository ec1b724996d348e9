"""Piccolo tables bound to a test's own database, and to nothing outside a test that asks for one.

`bound(app, url)` points every Piccolo table of `app` (its piccolo_app.py's table classes) at an
engine on `url` for the duration of the block, and back afterwards. `guard(app)` points them, the
rest of the time, at an engine that refuses to connect and says which fixture to ask for.

Invariant: while the pytest plugin runs, every table of an app whose tables module has been
imported talks to the database of the test that asked for it, or to no database at all; never to
the engine of a piccolo_conf.py, which in a service is typically its development database.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from dbmigrate.core.config import DATABASES
from dbmigrate.core.urls import database_name


class UnboundTableError(Exception):
    """A test used an app's tables without asking for that app's database. (Not a RuntimeError:
    Piccolo's run_sync reads a RuntimeError as "a loop is running" and retries the query.)"""


class _QuietEngine(PostgresEngine):
    """A PostgresEngine that connects only when a query runs (Piccolo's own checks a version, and
    may create extensions, when it is made)."""

    async def check_version(self) -> None:
        pass

    async def prep_database(self) -> None:
        pass


class BoundEngine(_QuietEngine):
    """The engine of one test's database."""

    def __init__(self, url: str) -> None:
        super().__init__(config={"dsn": url, "database": database_name(url)}, extensions=())


class UnboundEngine(_QuietEngine):
    """Where an app's tables point outside a test that asked for its database: nowhere."""

    def __init__(self, app: str) -> None:
        super().__init__(config={"database": f"unbound_{app}"}, extensions=())
        self.app = app

    async def get_new_connection(self) -> Any:
        raise UnboundTableError(
            f"{self.app}'s tables are bound to no database here: ask for a fresh one by adding the "
            f"`{self.app}_db` fixture (dbmigrate's pytest plugin) to the test's arguments"
        )


@dataclass(frozen=True)
class BoundDatabase:
    """What a `<app>_db` fixture yields: the test's own migrated database, its URL (asyncpg's
    form), the Piccolo engine every table of the app is bound to, and a way to connect."""

    app: str
    url: str
    engine: PostgresEngine
    tables: tuple[type[Table], ...]

    @property
    def name(self) -> str:
        return database_name(self.url)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """An asyncpg connection to the test's database, closed when the block ends."""
        conn = await asyncpg.connect(self.url)
        try:
            yield conn
        finally:
            await conn.close()


def app_tables(app: str) -> tuple[type[Table], ...]:
    """Every Piccolo table of `app`: the table classes of its piccolo_app.py."""
    return tuple(importlib.import_module(f"{app}.piccolo_app").APP_CONFIG.table_classes)


_originals: dict[type[Table], Any] = {}  # each guarded table's engine before the plugin touched it


def guard(app: str) -> None:
    """Point `app`'s tables that are not bound by the plugin at an engine that refuses (once)."""
    unbound = None
    for table in app_tables(app):
        if not isinstance(table._meta._db, (UnboundEngine, BoundEngine)):
            _originals.setdefault(table, table._meta._db)
            unbound = unbound or UnboundEngine(app)
            table._meta.db = unbound


def guard_imported_apps() -> None:
    """`guard` every app whose tables module this process has imported (a test module did)."""
    for database in DATABASES.values():
        if f"{database.app}.tables" in sys.modules:
            guard(database.app)


def unguard() -> None:
    """Give every guarded table its engine back (the session is over)."""
    for table, engine in _originals.items():
        table._meta._db = engine
    _originals.clear()


@contextlib.contextmanager
def bound(app: str, url: str) -> Iterator[BoundDatabase]:
    """Every table of `app` bound to the database at `url` in the block, and to nothing after."""
    guard(app)
    tables = app_tables(app)
    engine = BoundEngine(url)
    before = [table._meta._db for table in tables]
    for table in tables:
        table._meta.db = engine
    try:
        yield BoundDatabase(app=app, url=url, engine=engine, tables=tables)
    finally:
        for table, previous in zip(tables, before, strict=True):
            table._meta._db = previous
