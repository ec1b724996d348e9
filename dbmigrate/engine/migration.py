"""The migration model: one interface that every kind of migration implements.

The executor plans, checks, applies, reverts and previews migrations only through `Migration`
(as Django's executor works through `Operation`, dbmate through `ParsedMigration`):

  * `transactional`      whether it runs in one transaction with its bookkeeping;
  * `statements()`       its SQL, split by PostgreSQL's parser, or None when only known at run
                         time (Piccolo operations and raw Python steps);
  * `irreversible_reason` None when `down` can undo it, else why not;
  * `problems()`         what makes it unsafe to run at all, found before anything runs;
  * `transaction()`, `run()`, `preview()` (the SQL it would run; given no connection, rendered
                         without a database, as `make db-migrate-sql` prints it);
  * `staged`             whether it runs as short transactions of its own (`run_stages`, then
                         `finish` in the transaction that records it), resuming where it stopped;
  * `render_down_copy()` what `down` runs, as SQL, kept in the bookkeeping at apply so that a
                         revert needs no file (stored_down.py); None when it is not plain SQL.

Three kinds exist: `SQLSteps` (sql_migration.py: an SQLMigration, whose SQL is all that runs),
`StagedSteps` (staged.py: a StagedMigration, its SQL and batched updates in stages) and
`PiccoloOperations` (piccolo_migration.py: an ordinary Piccolo MigrationManager). The loader is the
only code that tells them apart. Invariant: nothing here imports Piccolo or pglast's parser, so a
no-op migrate that never loads a migration never pays for them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from dbmigrate.engine.files import MigrationFile
    from dbmigrate.engine.statements import Statement

# What a migration's code may raise that is no Exception, yet must not end the run unexplained: the
# loader and the executor turn it into an error naming the migration.
ENDS_THE_RUN = (SystemExit, KeyboardInterrupt)

# Called around a statement of a non-transactional migration: (its number, from 1; the statement).
StatementHook = Callable[[int, "Statement"], Awaitable[None]]


@dataclass(frozen=True)
class StatementHooks:
    """How the executor follows a non-transactional migration, statement by statement."""

    first: int = 1  # the first statement to run: those before it finished in an earlier run
    before: StatementHook | None = None  # e.g. drop the INVALID index an earlier build left
    done: StatementHook | None = None  # e.g. record in the trail that it finished


@dataclass(frozen=True)
class MigrationOptions:
    """Module-level settings a migration file may carry."""

    lock_timeout: str | None = None  # LOCK_TIMEOUT = "30s" overrides ORION_LOCK_TIMEOUT
    statement_timeout: str | None = None  # STATEMENT_TIMEOUT = "2h"
    lock_retries: int | None = None  # LOCK_RETRIES = 0
    squawk_exempt: dict[str, str] = field(default_factory=dict)  # SQUAWK_EXEMPT = {"rule": "why"}
    safety_accepted: dict[str, str] = field(default_factory=dict)  # SAFETY_ACCEPTED = {"rule": "why"}
    source_tool: str | None = None  # SOURCE_TOOL = "dbmate": imported, applied already by that tool


@dataclass(frozen=True)
class DownCopy:
    """What `down` runs, kept in the bookkeeping when the migration is applied (recorder.py)."""

    sql: str
    transactional: bool  # False: each statement runs alone, outside a transaction


@dataclass(frozen=True)
class LintSource:
    """SQL to lint, placed at its line in `path` (a .sql file, or the migration's .py)."""

    text: str
    path: str
    first_line: int


class Migration(ABC):
    def __init__(self, file: MigrationFile, options: MigrationOptions) -> None:
        self.file = file
        self.options = options

    @property
    def id(self) -> str:
        return self.file.id

    @property
    @abstractmethod
    def transactional(self) -> bool: ...

    @abstractmethod
    def statements(self, backwards: bool = False) -> list[Statement] | None: ...

    @property
    @abstractmethod
    def irreversible_reason(self) -> str | None: ...

    @property
    def reversible(self) -> bool:
        return self.irreversible_reason is None

    @abstractmethod
    def problems(self) -> list[str]: ...

    @abstractmethod
    def transaction(self, conn: asyncpg.Connection, prelude: str) -> contextlib.AbstractAsyncContextManager:
        """The migration's transaction, with `prelude` (SET LOCAL ... statements) run first."""

    @abstractmethod
    async def run(self, conn: asyncpg.Connection, backwards: bool, hooks: StatementHooks | None = None) -> None:
        """Run it. A non-transactional migration whose statements() are known runs them one at a time,
        from `hooks.first` (re-running only the session settings among those it skips), calling the
        hooks around each."""

    def one_query(self, backwards: bool) -> str | None:
        """This direction's SQL as one text the executor may send in a single query, together with
        the transaction, its timeouts and the bookkeeping (one round trip); None when it does not
        run as plain SQL in one transaction."""
        return None

    @abstractmethod
    async def preview(self, conn: asyncpg.Connection | None, backwards: bool) -> str:
        """The SQL a run in this direction sends; `conn` None renders it with no database."""

    @abstractmethod
    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        """The forwards SQL to lint, each piece placed at its line in the file it comes from."""

    # Where it comes from when not from its file ("from the copy stored when ...": stored_down.py).
    origin: str | None = None
    # What `down` runs, rendered before the migration is applied (runner.apply) and recorded with it.
    down_copy: DownCopy | None = None

    async def render_down_copy(self) -> DownCopy | None:
        """Render (and keep in `down_copy`) the SQL `down` runs, for the bookkeeping; None when it
        cannot be rendered as plain SQL (a raw Python step) or there is no down."""
        self.down_copy = None
        return None

    # A staged migration (staged.py) runs as short transactions of its own, each self-contained
    # (so through any pooler), and resumes where a killed run stopped: the executor calls
    # `run_stages` outside any transaction, then `finish` inside the one that records it.
    staged = False

    async def run_stages(
        self,
        conn: asyncpg.Connection,
        backwards: bool,
        timeouts: tuple[str, str],
        fence: Callable[[], Awaitable[None]],
        retries: int,
    ) -> None:
        raise NotImplementedError

    async def finish(self, conn: asyncpg.Connection, backwards: bool) -> None:
        raise NotImplementedError


@contextlib.asynccontextmanager
async def plain_transaction(conn: asyncpg.Connection, prelude: str = "") -> AsyncIterator[None]:
    """A transaction opened together with `prelude` in one round trip, whose failure shows the
    statement's error, not a failed rollback's (on a terminated connection asyncpg's own context
    manager raises "cannot call Transaction.rollback()")."""
    await conn.execute(f"BEGIN; {prelude}" if prelude else "BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
