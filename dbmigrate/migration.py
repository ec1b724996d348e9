"""The migration model: one interface that every kind of migration implements.

The executor plans, checks, applies, reverts and previews migrations only through `Migration`
(as Django's executor works through `Operation`, dbmate through `ParsedMigration`):

  * `transactional`      whether it runs in one transaction with its bookkeeping;
  * `statements()`       its SQL, split by PostgreSQL's parser, or None when only known at run
                         time (Piccolo operations and raw Python steps);
  * `irreversible_reason` None when `down` can undo it, else why not;
  * `problems()`         what makes it unsafe to run at all, found before anything runs;
  * `transaction()`, `run()`, `preview()`.

Two kinds exist: `SQLSteps` (an SQLMigration: the SQL is all that runs) and `PiccoloOperations`
(an ordinary Piccolo MigrationManager). The loader is the only code that tells them apart.
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate import statements as sql_statements
from dbmigrate.sql import SQLMigration, SQLText
from dbmigrate.statements import SQLSyntaxError, Statement

if TYPE_CHECKING:
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

    from dbmigrate.loader import MigrationFile

# Called after each statement of a non-transactional migration finishes: (statements done, statement).
StatementDone = Callable[[int, Statement], Awaitable[None]]


@dataclass(frozen=True)
class MigrationOptions:
    """Module-level settings a migration file may carry."""

    lock_timeout: str | None = None  # LOCK_TIMEOUT = "30s" overrides ORION_LOCK_TIMEOUT
    statement_timeout: str | None = None  # STATEMENT_TIMEOUT = "2h"
    lock_retries: int | None = None  # LOCK_RETRIES = 0
    squawk_exempt: dict[str, str] = field(default_factory=dict)  # SQUAWK_EXEMPT = {"rule": "why"}


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
    async def run(self, conn: asyncpg.Connection, backwards: bool, done: StatementDone | None = None) -> None: ...

    @abstractmethod
    async def preview(self, conn: asyncpg.Connection, backwards: bool) -> str: ...

    @abstractmethod
    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        """The forwards SQL to lint, each piece placed at its line in the file it comes from."""


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


class SQLSteps(Migration):
    """An SQLMigration: its SQL steps are exactly what runs; its Piccolo operations never run."""

    def __init__(self, file: MigrationFile, options: MigrationOptions, manager: SQLMigration) -> None:
        super().__init__(file, options)
        self.manager = manager
        # Per direction: each SQL text with its statements (none for a text of only comments).
        self._parsed: dict[bool, list[tuple[SQLText, list[Statement]]] | SQLSyntaxError] = {}

    @classmethod
    def for_piccolo_cli(cls, manager: SQLMigration) -> SQLSteps:
        from dbmigrate.loader import MigrationFile

        return cls(MigrationFile("", manager.migration_id, None, ""), MigrationOptions(), manager)  # type: ignore[arg-type]

    @property
    def transactional(self) -> bool:
        return self.manager.wrap_in_transaction

    def _texts(self, backwards: bool) -> list[SQLText]:
        if not backwards:
            return [step.forwards for step in self.manager.steps]
        return [step.backwards for step in reversed(self.manager.steps) if step.backwards is not None]

    def _parse(self, backwards: bool) -> list[tuple[SQLText, list[Statement]]] | SQLSyntaxError:
        if backwards not in self._parsed:
            try:
                self._parsed[backwards] = [
                    (text, sql_statements.split(text.text, self._first_line(text))) for text in self._texts(backwards)
                ]
            except SQLSyntaxError as error:
                self._parsed[backwards] = error
        return self._parsed[backwards]

    def _parsed_texts(self, backwards: bool) -> list[tuple[SQLText, list[Statement]]]:
        parsed = self._parse(backwards)
        if isinstance(parsed, SQLSyntaxError):
            raise parsed
        return parsed

    def statements(self, backwards: bool = False) -> list[Statement]:
        return [statement for _, found in self._parsed_texts(backwards) for statement in found]

    @property
    def irreversible_reason(self) -> str | None:
        if any(step.backwards is None for step in self.manager.steps):
            return "it has no backwards SQL"
        parsed = self._parse(True)
        if isinstance(parsed, SQLSyntaxError) or any(found for _, found in parsed):
            return None  # a syntax error is one of problems(), reported before anything runs
        if all(step.backwards.declares_nothing_to_undo for step in self.manager.steps if step.backwards):
            return None
        return "its backwards SQL is empty (write NOTHING_TO_UNDO there if undoing it really needs no SQL)"

    def problems(self) -> list[str]:
        found = []
        for backwards in (False, True):
            parsed = self._parse(backwards)
            if isinstance(parsed, SQLSyntaxError):
                where = self._where_line(backwards, parsed.line)
                found.append(f"{'backwards' if backwards else 'forwards'} SQL does not parse ({where}): {parsed}")
        if found:
            return found
        if self.manager.steps and not self.statements(False):
            found.append("its forwards SQL is empty (only comments): write the change, or delete the file")
        for backwards in (False, True):
            found += self._transaction_problems(backwards)
        return found

    def _transaction_problems(self, backwards: bool) -> list[str]:
        if not self.transactional:
            return []
        found = []
        for statement in self.statements(backwards):
            where = self._where_line(backwards, statement.line)
            if statement.outside_transaction:
                found.append(
                    f"{statement.outside_transaction} ({where}) cannot run inside a transaction, and this migration "
                    "is transactional: move it to a migration of its own created with "
                    "`make db-migrate-create NAME=... TRANSACTION=0` (wrap_in_transaction=False)"
                )
            elif statement.transaction_control:
                found.append(
                    f"{statement.summary!r} ({where}) controls the transaction, which dbmigrate already opens and "
                    "commits with the bookkeeping: remove it"
                )
        return found

    def _where_line(self, backwards: bool, line: int) -> str:
        texts = self._texts(backwards)
        path = next((t.path for t in texts if t.path is not None), None)
        name = path.name if path is not None else (self.file.path.name if self.file.path else "the migration")
        return f"{name} line {line}"

    def _first_line(self, text: SQLText) -> int:
        """The line of the migration's file (or sibling .sql file) where `text` starts."""
        if text.path is not None:
            return 1
        index = self._file_text.find(text.text)
        return self._file_text[:index].count("\n") + 1 if index >= 0 else 1

    @functools.cached_property
    def _file_text(self) -> str:
        """The migration's .py, read once (to place its SQL strings at their lines)."""
        try:
            return self.file.path.read_text(encoding="utf-8") if self.file.path else ""
        except OSError:
            return ""

    def transaction(self, conn: asyncpg.Connection, prelude: str) -> contextlib.AbstractAsyncContextManager:
        return plain_transaction(conn, prelude)

    async def run(self, conn: asyncpg.Connection, backwards: bool, done: StatementDone | None = None) -> None:
        if self.transactional:
            # The whole text of each step in one simple-query round trip: it runs in our transaction.
            for text, found in self._parsed_texts(backwards):
                if found:  # a text of only comments has nothing to send
                    await conn.execute(text.text)
            return
        # Outside a transaction every statement must go alone: PostgreSQL runs a multi-statement
        # query as one implicit transaction, which CREATE INDEX CONCURRENTLY refuses.
        for count, statement in enumerate(self.statements(backwards), start=1):
            await conn.execute(statement.sql)
            if done is not None:
                await done(count, statement)

    async def preview(self, conn: asyncpg.Connection, backwards: bool) -> str:
        return "".join(f"{statement.sql};\n\n" for statement in self.statements(backwards)).strip() + "\n"

    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        file_name = str(self.file.path) if self.file.path else self.id
        return [
            LintSource(text.text, str(text.path) if text.path else file_name, self._first_line(text))
            for text in self._texts(False)
        ]

    async def run_on_piccolo_engine(self, backwards: bool, preview: bool) -> None:
        """For `piccolo migrations forwards|backwards`: the same statements, on Piccolo's engine."""
        if self.irreversible_reason and backwards:
            raise RuntimeError(f"{self.id} cannot be rolled back: {self.irreversible_reason}")
        problems = self.problems()
        if problems:
            raise RuntimeError(f"{self.id}: {problems[0]}")
        if preview:
            print(await self.preview(None, backwards))  # type: ignore[arg-type]
            return
        from piccolo.engine import engine_finder

        engine = engine_finder()
        async with contextlib.AsyncExitStack() as stack:
            if self.transactional:
                await stack.enter_async_context(engine.transaction())
            transaction = engine.current_transaction.get()
            connection = transaction.connection if transaction else await engine.get_new_connection()
            try:
                await self.run(connection, backwards)
            finally:
                if transaction is None:
                    await connection.close()


class PiccoloOperations(Migration):
    """An ordinary Piccolo migration: operations and raw Python steps, run by Piccolo's manager on
    the locked connection (piccolo_engine.pinned)."""

    def __init__(self, file: MigrationFile, options: MigrationOptions, manager: MigrationManager) -> None:
        super().__init__(file, options)
        self.manager = manager

    @property
    def transactional(self) -> bool:
        return self.manager.wrap_in_transaction

    def statements(self, backwards: bool = False) -> None:
        return None  # Piccolo builds its DDL as it runs, and raw steps are Python

    @property
    def irreversible_reason(self) -> str | None:
        # Piccolo runs raw forwards steps with no raw backwards steps as "nothing to undo".
        if self.manager.raw and not self.manager.raw_backwards:
            return "it has raw forwards steps and no raw backwards steps"
        return None

    def problems(self) -> list[str]:
        if _operation_count(self.manager) == 0 and not self.manager.raw:
            return ["it has no operations and no raw steps (an unfilled `piccolo migrations new` stub?)"]
        return []

    @contextlib.asynccontextmanager
    async def transaction(self, conn: asyncpg.Connection, prelude: str) -> AsyncIterator[None]:
        # The engine's transaction, routed to `conn`, so the one Piccolo opens in run() nests into
        # it and commits with the bookkeeping.
        from dbmigrate.piccolo_engine import framework_engine, pinned

        with pinned(conn):
            async with framework_engine().transaction():
                await conn.execute(prelude)
                yield

    async def run(self, conn: asyncpg.Connection, backwards: bool, done: StatementDone | None = None) -> None:
        from dbmigrate.piccolo_engine import piccolo_prints, pinned

        with pinned(conn), piccolo_prints():
            await self.manager.run(backwards=backwards)

    async def preview(self, conn: asyncpg.Connection, backwards: bool) -> str:
        from dbmigrate.piccolo_engine import piccolo_prints, pinned

        notes = [
            f"-- raw Python step {getattr(step, '__name__', step)!r}: its SQL is only known when it runs"
            for step in (self.manager.raw_backwards if backwards else self.manager.raw)
        ]
        self.manager.preview = True
        transaction = conn.transaction(readonly=True)
        await transaction.start()
        try:
            with pinned(conn), piccolo_prints() as printed:
                await self.manager.run(backwards=backwards)
        finally:
            self.manager.preview = False
            await transaction.rollback()
        # Drop Piccolo's progress line ("  - 002_x [preview forwards]... ").
        lines = [line for line in printed.getvalue().splitlines() if "[preview " not in line]
        return "\n".join(notes + lines).strip() + "\n"

    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        # Piccolo's DDL is only known by previewing it, which needs the connection.
        return [LintSource(await self.preview(conn, backwards=False), f"{self.id} (Piccolo's DDL)", 1)]


def _operation_count(manager: MigrationManager) -> int:
    """How many schema operations Piccolo's manager holds."""
    collections = {
        "add_tables": None,
        "drop_tables": None,
        "rename_tables": None,
        "change_table_schemas": None,
        "add_columns": "add_columns",
        "drop_columns": "drop_columns",
        "rename_columns": "rename_columns",
        "alter_columns": "alter_columns",
        "add_constraints": "add_constraints",
        "drop_constraints": "drop_constraints",
    }
    count = 0
    for name, inner in collections.items():
        value = getattr(manager, name, None)
        items = getattr(value, inner, None) if inner else value
        count += len(items or ())
    return count
