"""SQLMigration: a Piccolo migration whose effect on the database is exactly the SQL it carries.

Piccolo's DDL cannot express everything a schema contract needs (partial and multi-column
indexes, triggers and functions, INET, `now()` rather than `current_timestamp` defaults), and its
raw steps run before its own operations. An SQLMigration separates the two jobs, as Django's
`SeparateDatabaseAndState` does:

  * `sql(forwards, backwards)` steps are what runs against the database, in order (backwards
    steps in reverse order);
  * Piccolo operations added to it (`add_table`, `add_column`, ...) only describe the same change
    to Piccolo's schema snapshot, so `piccolo migrations new --auto` diffs tables.py against it.
    They are never executed.

The SQL is plain text, so it can be shown (dry runs) and linted. A step of a migration created
with `wrap_in_transaction=False` must be a single statement (e.g. CREATE INDEX CONCURRENTLY).
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def is_blank(statement: str) -> bool:
    """True for a step of only comments and white space (a fresh skeleton): nothing to send."""
    return not _COMMENTS.sub("", statement).strip()


class IrreversibleMigration(Exception):
    pass


@dataclass
class SQLMigration(MigrationManager):
    forwards_sql: list[str] = field(default_factory=list)
    backwards_sql: list[str] = field(default_factory=list)
    irreversible: bool = False

    def sql(self, forwards: str, backwards: str | None) -> SQLMigration:
        """Add a step. `backwards=None` makes the whole migration irreversible."""
        self.forwards_sql.append(forwards)
        if backwards is None:
            self.irreversible = True
        else:
            self.backwards_sql.insert(0, backwards)
        return self

    def statements(self, backwards: bool = False) -> list[str]:
        if backwards and self.irreversible:
            raise IrreversibleMigration(self.migration_id)
        return self.backwards_sql if backwards else self.forwards_sql

    async def run(self, backwards: bool = False) -> None:
        """Piccolo's entry point (the piccolo CLI); dbmigrate's executor calls `execute` directly."""
        statements = self.statements(backwards)
        if self.preview:
            for statement in statements:
                print(statement.strip() + "\n")
            return
        engine = engine_finder()
        async with AsyncExitStack() as stack:
            if self.wrap_in_transaction:
                await stack.enter_async_context(engine.transaction())
            transaction = engine.current_transaction.get()
            connection = transaction.connection if transaction else await engine.get_new_connection()
            try:
                await self.execute(connection, backwards)
            finally:
                if transaction is None:
                    await connection.close()

    async def execute(self, connection, backwards: bool = False) -> None:
        """Run the steps on `connection` (an asyncpg connection), with the simple query protocol,
        so that a transactional step may hold several statements."""
        for statement in self.statements(backwards):
            if not is_blank(statement):
                await connection.execute(statement)
