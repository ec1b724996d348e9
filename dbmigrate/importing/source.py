"""Other tools' histories, as read: one `SourceMigration` per migration of the source, in the
tool's own order, SQL kept verbatim. The shared reading helpers live here; each format has a module
of its own (dbmate.py, golang_migrate.py, flyway.py, node_pg_migrate.py), reading.py detects the
format, and writer.py writes our migration files.

Whether SQL holds a statement, and whether it may run in a transaction, is decided by the engine's
own reader of SQL (engine/statements.py, PostgreSQL's parser), never by a lexer of our own.
Invariant: a SourceMigration is exactly what the tool would run: its up, its down (None when it
has none), and whether the tool runs it in a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.engine import statements

DBMATE = "dbmate"
GOLANG_MIGRATE = "golang-migrate"
FLYWAY = "flyway"
NODE_PG_MIGRATE = "node-pg-migrate"
FORMATS = (NODE_PG_MIGRATE, DBMATE, GOLANG_MIGRATE, FLYWAY)


@dataclass(frozen=True)
class SourceMigration:
    """One migration of the source history."""

    version: str  # what the tool's bookkeeping table records (node-pg-migrate: the file name)
    name: str  # the description part of the file name, as written
    up: str  # verbatim
    down: str | None  # verbatim; None when the source has no down at all
    transactional: bool
    source: str  # the file(s) it came from, for messages and the generated docstring
    order: tuple  # sort key in the tool's own order

    @property
    def up_is_empty(self) -> bool:
        return not has_statements(self.up)

    @property
    def down_is_empty(self) -> bool:
        return self.down is None or not has_statements(self.down)

    @property
    def reversible(self) -> bool:
        return not self.down_is_empty or self.up_is_empty


def has_statements(sql: str) -> bool:
    """Whether `sql` holds a statement (SQL that does not parse counts: migrate reports it)."""
    return not statements.is_empty(sql)


def must_run_outside_transaction(sql: str, where: str) -> bool:
    """True when `sql` holds a statement PostgreSQL refuses inside a transaction block
    (`CONCURRENTLY`, `VACUUM`, tablespaces, subscriptions, ...), as engine/statements.py reads it."""
    try:
        return any(statement.outside_transaction for statement in statements.split(sql))
    except statements.SQLSyntaxError as error:
        raise UserError(f"{where} line {error.line} does not parse as PostgreSQL SQL ({error}): fix it first") from None


def list_files(folder: Path, recursive: bool = False) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:  # newline="": CRLF stays as written
            return f.read()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: convert it first") from None


def unrecognised(folder: Path, path: Path, format: str, expected: str) -> UserError:
    return UserError(f"{path.relative_to(folder)} is not a {format} migration (expected {expected}); move it away")


def after_marker_line(text: str, marker_end: int, end: int) -> str:
    """The text from the line after a marker (at `marker_end`, the end of its line) up to `end`."""
    start = marker_end + 1 if text.startswith("\n", marker_end) else marker_end
    return text[start:end] if start <= end else ""
