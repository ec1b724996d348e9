"""A target: one database to migrate, resolved once at the edge of a command.

Everything the engine needs to know about where and how to migrate (the URL, the migrations
folder and its files, a squashed history's baseline, timeouts, lock wait) is read from the
settings here, once, and passed in.
The engine never reads settings or environment variables. A scratch or fleet database is just
another Target (`with_url`), with no settings patched.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.urls import redact
from dbmigrate.engine import baselines, files
from dbmigrate.engine.files import MigrationFile
from dbmigrate.server import connection, pooling


@dataclass(frozen=True)
class Target:
    database: Database
    url: str
    project_root: Path
    files: tuple[MigrationFile, ...]  # read and hashed once per command
    connect_timeout_seconds: float
    lock_wait_seconds: float
    lock_timeout: str
    statement_timeout: str
    lock_retries: int
    pooler: str = "auto"  # ORION_POOLER (pooling.py)
    lease_seconds: float = pooling.DEFAULT_LEASE_SECONDS  # ORION_LOCK_LEASE (lease.py)
    baseline: MigrationFile | None = None  # a squashed history's baseline (baselines.py)

    @classmethod
    def resolve(cls, settings: Settings, database: Database, shared_numbers: bool = False) -> Target:
        """Call after connection.prepare(settings, ...): the embedded server's URL needs it running."""
        return cls.for_url(settings, database, connection.url_for(settings, database), shared_numbers)

    @classmethod
    def for_url(cls, settings: Settings, database: Database, url: str, shared_numbers: bool = False) -> Target:
        """`database`'s migrations at `url` (a fleet's database, or the configured one); two files
        with one number are refused unless `shared_numbers` (files.discover)."""
        history, candidates = _scan(settings.project_root, database, shared_numbers)  # the folder read once
        baseline = baselines.chosen(settings.project_root, database, candidates)
        return cls(
            database=database,
            url=url,
            project_root=settings.project_root,
            files=tuple(baselines.arrange(list(history), baseline)),
            connect_timeout_seconds=settings.connect_timeout_seconds,
            lock_wait_seconds=settings.lock_wait_seconds,
            lock_timeout=settings.lock_timeout,
            statement_timeout=settings.statement_timeout,
            lock_retries=settings.lock_retries,
            pooler=pooling.mode(settings),
            lease_seconds=pooling.lease_seconds(settings),
            baseline=baseline,
        )

    @property
    def name(self) -> str:
        return self.database.name

    @property
    def shown_url(self) -> str:
        return redact(self.url)

    def with_url(self, url: str) -> Target:
        return replace(self, url=url)

    def reread_files(self) -> Target:
        history, candidates = _scan(self.project_root, self.database)
        baseline = baselines.chosen(self.project_root, self.database, candidates)
        return replace(self, files=tuple(baselines.arrange(list(history), baseline)), baseline=baseline)

    def history_walk(self) -> Target:
        """This target with its files as verify walks them from empty: the history while all of it
        is there, else the baseline in its place, whatever a database has applied."""
        return replace(self, baseline=None)

    async def connect(self, purpose: str) -> asyncpg.Connection:
        return await connection.connect(self, self.url, purpose)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def connected(self, purpose: str) -> AsyncIterator[asyncpg.Connection]:
        conn = await self.connect(f"{purpose} {self.name}")
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):  # a dead server: nothing left to close politely
                await conn.close(timeout=5)


def _scan(
    root: Path, database: Database, shared_numbers: bool = False
) -> tuple[list[MigrationFile], list[tuple[Path, bytes]]]:
    """files.scan of `database`'s folder; a file that cannot be read (a folder or a broken link named
    like a migration, a file without read permission) is a UserError naming it."""
    try:
        return files.scan(root, database, shared_numbers)
    except OSError as error:
        shown = Path(error.filename or files.migrations_folder(root, database))
        shown = shown.relative_to(root) if shown.is_relative_to(root) else shown
        reason = "it is a folder" if isinstance(error, IsADirectoryError) else error.strerror or type(error).__name__
        raise UserError(
            f"{shown} cannot be read ({reason}): every .py file in {database.app}/{files.MIGRATIONS_FOLDER} "
            "must be a readable migration file"
        ) from None
