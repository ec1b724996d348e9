"""The Piccolo engine of piccolo_conf.py, routed to the connection that holds the migration lock.

Piccolo sends all migration work (DDL, raw steps, and its own transactions) to the single `DB` of
piccolo_conf.py. Inside a framework command, `pinned(conn)` makes that engine hand out `conn`
(the connection holding the database's migration lock) to the current asyncio task, so:
  * the migration, its raw steps and its bookkeeping row share one connection and one transaction;
  * several databases can migrate concurrently in one process, each task on its own connection.
Outside a command (the `piccolo` CLI), the engine connects to the database of the app that
Piccolo's command is working on (`piccolo_cli.py` says which, per task), so no app ever reaches
another app's database; with no app in play it falls back to ORION_DB (default orion).

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
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from dbmigrate.engine.files import order_key

_pinned_connection: ContextVar[asyncpg.Connection | None] = ContextVar("dbmigrate_pinned_connection", default=None)
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


class FrameworkEngine(PostgresEngine):
    def __init__(self) -> None:
        super().__init__(config={"database": "dbmigrate"}, extensions=())

    async def check_version(self) -> None:
        # Piccolo checks at construction, i.e. at every import of piccolo_conf; we connect lazily.
        pass

    async def prep_database(self) -> None:
        pass

    async def get_new_connection(self) -> Any:
        pinned = _pinned_connection.get()
        if pinned is not None:
            return _BorrowedConnection(pinned)
        return await asyncpg.connect(await _native_cli_url())


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
        yield
    finally:
        _pinned_connection.reset(token)


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


def framework_engine() -> FrameworkEngine:
    """piccolo_conf.DB, checked to be ours (otherwise Piccolo would bypass the lock)."""
    from piccolo.engine import engine_finder

    engine = engine_finder()
    if not isinstance(engine, FrameworkEngine):
        from dbmigrate.core.errors import UserError

        raise UserError("piccolo_conf.py must set DB = FrameworkEngine() from dbmigrate.engine.piccolo_engine")
    return engine


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
