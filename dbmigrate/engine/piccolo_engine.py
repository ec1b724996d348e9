"""Piccolo's engine, routed to the connection that holds the migration lock, with no piccolo_conf.py needed.

Piccolo sends all migration work (DDL, raw steps, its own transactions, the app registry its
auto-migrations read) to the `DB` and `APP_REGISTRY` of the conf module it finds. Inside the
framework's work (`pinned(conn)`, `in_framework()`), Piccolo finds the framework's own conf
instead (`framework_conf()`: DB = one FrameworkEngine, APP_REGISTRY = the apps of
config.DATABASES), whatever piccolo_conf.py the process has, or none (the apps installed from a
wheel, a service with a piccolo_conf.py of its own). Routing is per asyncio task (a ContextVar),
so a service's own Piccolo queries in other tasks never see it. Under `pinned(conn)` the engine
hands out `conn` (the connection holding the database's migration lock), so:
  * the migration, its raw steps and its bookkeeping row share one connection and one transaction;
  * several databases can migrate concurrently in one process, each task on its own connection.
Under `offline()` it hands out a connection that only pretends to open transactions, so Piccolo's
preview renders a migration's DDL with no database at all (`make db-migrate-sql`).
Outside the framework's work (the `piccolo` CLI, through the project's piccolo_conf.py), the
engine connects to the database of the app that Piccolo's command is working on (`piccolo_cli.py`
says which, per task), so no app ever reaches another app's database; with no app in play it falls
back to ORION_DB (default orion).

Piccolo orders migration IDs as text (`sorted()`), which puts `1000_x` before `999_y`.
`order_by_number()` makes every place Piccolo sorts IDs (its schema snapshot, which auto
migrations and drop_column's backwards read; check; --fake) order them as dbmigrate does, by number.
"""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from dbmigrate.engine.files import order_key

_pinned_connection: ContextVar[asyncpg.Connection | None] = ContextVar("dbmigrate_pinned_connection", default=None)
_in_framework: ContextVar[bool] = ContextVar("dbmigrate_in_framework", default=False)
_offline: ContextVar[bool] = ContextVar("dbmigrate_offline", default=False)
_piccolo_output: ContextVar[io.StringIO | None] = ContextVar("dbmigrate_piccolo_output", default=None)
_cli_app: ContextVar[str | None] = ContextVar("dbmigrate_piccolo_cli_app", default=None)


class _BorrowedConnection:
    """`conn` as Piccolo sees it: everything passes through, except that closing is ours to do."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def close(self) -> None:
        pass


class _NoTransaction:
    async def start(self) -> None:
        pass

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


class _OfflineConnection:
    """What Piccolo's preview gets under `offline()`: transactions that do nothing, and an error for
    anything that would need a database (a preview of Piccolo's own operations never does)."""

    def transaction(self, **_: Any) -> _NoTransaction:
        return _NoTransaction()

    async def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"rendering a migration offline needed the database (connection.{name})")


class FrameworkEngine(PostgresEngine):
    def __init__(self) -> None:
        super().__init__(config={"database": "dbmigrate"}, extensions=())

    async def check_version(self) -> None:
        # Piccolo checks at construction, i.e. at every import of piccolo_conf; we connect lazily.
        pass

    async def prep_database(self) -> None:
        pass

    async def get_new_connection(self) -> Any:
        if _offline.get():
            return _OfflineConnection()
        pinned = _pinned_connection.get()
        if pinned is not None:
            return _BorrowedConnection(pinned)
        return await asyncpg.connect(await _native_cli_url())


class FrameworkConf:
    """The framework's own Piccolo conf module, as Piccolo's Finder reads one: DB and APP_REGISTRY."""

    def __init__(self) -> None:
        self.DB = FrameworkEngine()

    @cached_property
    def APP_REGISTRY(self):  # noqa: N802 - the name Piccolo looks up
        from piccolo.conf.apps import AppRegistry

        from dbmigrate.core.config import DATABASES

        return AppRegistry(apps=[f"{db.app}.piccolo_app" for db in DATABASES.values()])


_framework_conf: FrameworkConf | None = None


def framework_conf() -> FrameworkConf:
    global _framework_conf
    if _framework_conf is None:
        _framework_conf = FrameworkConf()
    return _framework_conf


def framework_engine() -> FrameworkEngine:
    """The engine Piccolo uses inside the framework's work: the one its transactions nest in."""
    return framework_conf().DB


_routed = False


def _route_piccolo_conf() -> None:
    """Make Piccolo's Finder hand out the framework's conf inside the framework's work (once)."""
    global _routed
    if _routed:
        return
    from piccolo.conf.apps import Finder

    original = Finder.get_piccolo_conf_module

    def get_piccolo_conf_module(self, module_name: str | None = None):
        if module_name is None and _in_framework.get():
            return framework_conf()
        return original(self, module_name)

    Finder.get_piccolo_conf_module = get_piccolo_conf_module  # type: ignore[method-assign]
    _routed = True


@contextmanager
def in_framework() -> Iterator[None]:
    """Piccolo finds the framework's conf (engine and app registry) in the current task in the block."""
    _route_piccolo_conf()
    token = _in_framework.set(True)
    try:
        yield
    finally:
        _in_framework.reset(token)


@contextmanager
def app_database(app: str) -> Iterator[None]:
    """Unpinned Piccolo queries of the current task go to `app`'s own database in the block."""
    token = _cli_app.set(app)
    try:
        yield
    finally:
        _cli_app.reset(token)


@contextmanager
def pinned(conn: asyncpg.Connection) -> Iterator[None]:
    """Route every Piccolo query of the current task to `conn` for the duration of the block."""
    token = _pinned_connection.set(conn)
    try:
        with in_framework():
            yield
    finally:
        _pinned_connection.reset(token)


@contextmanager
def offline() -> Iterator[None]:
    """Piccolo's transactions in the current task open nothing in the block (for previews)."""
    token = _offline.set(True)
    try:
        with in_framework():
            yield
    finally:
        _offline.reset(token)


@contextmanager
def piccolo_prints() -> Iterator[io.StringIO]:
    """What Piccolo's migration manager prints in the current task (progress, preview DDL) goes to
    the yielded buffer instead of stdout. Per task, so concurrent migrations never mix, and
    sys.stdout is never swapped."""
    _route_piccolo_prints()
    buffer = io.StringIO()
    token = _piccolo_output.set(buffer)
    try:
        yield buffer
    finally:
        _piccolo_output.reset(token)


def _piccolo_print(*args: Any, **kwargs: Any) -> None:
    buffer = _piccolo_output.get()
    if buffer is None or kwargs.get("file") not in (None, buffer):
        builtins.print(*args, **kwargs)
    else:
        builtins.print(*args, **{**kwargs, "file": buffer})


def _route_piccolo_prints() -> None:
    """Give Piccolo's migration modules their own `print` (a module global shadows the builtin)."""
    from piccolo.apps.migrations.auto import migration_manager, schema_differ

    migration_manager.print = _piccolo_print  # type: ignore[attr-defined]
    schema_differ.print = _piccolo_print  # type: ignore[attr-defined]


class NumberedID(str):
    """A migration ID that sorts by number (files.order_key) wherever Piccolo sorts IDs; equal to,
    and hashed as, the plain string."""

    __slots__ = ()

    def __lt__(self, other: str) -> bool:
        return order_key(str(self)) < order_key(str(other))

    def __gt__(self, other: str) -> bool:
        return order_key(str(self)) > order_key(str(other))

    def __le__(self, other: str) -> bool:
        return order_key(str(self)) <= order_key(str(other))

    def __ge__(self, other: str) -> bool:
        return order_key(str(self)) >= order_key(str(other))


def order_by_number() -> None:
    """Piccolo's migration modules keyed by NumberedIDs, so its `sorted()` of them (snapshot,
    check, forwards --fake) gives dbmigrate's order. Idempotent."""
    from piccolo.apps.migrations.commands.base import BaseMigrationManager

    original = BaseMigrationManager.get_migration_modules
    if getattr(original, "orders_by_number", False):
        return

    def get_migration_modules(self, folder_path: str) -> dict:
        return {NumberedID(key): module for key, module in original(self, folder_path).items()}

    get_migration_modules.orders_by_number = True  # type: ignore[attr-defined]
    BaseMigrationManager.get_migration_modules = get_migration_modules  # type: ignore[method-assign]


_cli_urls: dict[str, str] = {}  # per app: Piccolo opens a connection per query, we resolve once


async def _native_cli_url() -> str:
    app = _cli_app.get() or os.environ.get("ORION_DB", "orion")
    if app not in _cli_urls:
        from dbmigrate.core.config import load_settings, select_databases
        from dbmigrate.server import connection

        settings = load_settings()
        database = select_databases(app)[0]
        await connection.prepare(settings, [database])  # starts the embedded server when it is in use
        _cli_urls[app] = connection.url_for(settings, database)
    return _cli_urls[app]
