"""SQL read by PostgreSQL's own parser (pglast wraps libpg_query, the server's grammar).

A migration's SQL is split into statements here, never with regular expressions, so
dollar-quoted bodies, `DO` blocks, `BEGIN ATOMIC` functions, comments and string literals holding
semicolons are all read the way the server reads them. Each statement knows its line (in the SQL
text, and so in the file it came from), whether it may run inside a transaction block, which
index it builds concurrently (so a failed or killed build's INVALID leftover can be found by
name: leftovers.py), whether it only changes the session's settings, and its digest (what a
non-transactional migration's trail records of each statement that finished).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pglast import ast, enums, parser

from dbmigrate.engine.leftovers import IndexBuild

# Statements PostgreSQL refuses inside a transaction block ("cannot run inside a transaction block").
_NEVER_IN_TRANSACTION = {
    ast.AlterSystemStmt: "ALTER SYSTEM",
    ast.CreatedbStmt: "CREATE DATABASE",
    ast.DropdbStmt: "DROP DATABASE",
    ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
    ast.DropTableSpaceStmt: "DROP TABLESPACE",
    ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
    ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
}


class SQLSyntaxError(Exception):
    """The SQL does not parse; `line` is 1-based within the text given to `split`."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based, counted in the text it was split from plus `first_line - 1`
    outside_transaction: str | None  # e.g. "CREATE INDEX CONCURRENTLY": may not run in a transaction block
    transaction_control: bool  # BEGIN, COMMIT, ROLLBACK, SAVEPOINT...: would break the migration's own transaction
    index_build: IndexBuild | None = None  # the index it builds concurrently
    session_setting: bool = False  # SET, RESET, SELECT set_config(...): changes only the session

    @property
    def digest(self) -> str:
        """What identifies its text: a statement that finished is resumed after only while unchanged."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def summary(self) -> str:
        """The statement's first line, shortened: enough to recognise it in an error."""
        first = self.sql.strip().splitlines()[0] if self.sql.strip() else ""
        return first if len(first) <= 70 else first[:67] + "..."


def split(sql: str, first_line: int = 1) -> list[Statement]:
    """The statements of `sql`, in order; [] for SQL of only comments and white space."""
    try:
        raw_statements = parser.parse_sql(sql)
    except parser.ParseError as error:
        message, position = (error.args + (0,))[:2] if error.args else (str(error), 0)
        line = sql[: max(int(position) - 1, 0)].count("\n") + first_line
        raise SQLSyntaxError(str(message), line) from None
    statements = []
    for raw in raw_statements:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        text = sql[start:end].strip()
        statements.append(
            Statement(
                sql=text,
                line=sql[:start].count("\n") + first_line,
                outside_transaction=_outside_transaction(raw.stmt),
                transaction_control=isinstance(raw.stmt, ast.TransactionStmt),
                index_build=_index_build(raw.stmt),
                session_setting=_session_setting(raw.stmt),
            )
        )
    return statements


def is_empty(sql: str) -> bool:
    """True when `sql` holds no statement (only comments and white space); False if it does not parse."""
    try:
        return not parser.parse_sql(sql)
    except parser.ParseError:
        return False


def _quoted(range_var: ast.RangeVar) -> str:
    parts = [range_var.schemaname, range_var.relname] if range_var.schemaname else [range_var.relname]
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _index_build(node: ast.Node) -> IndexBuild | None:
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return IndexBuild(reindex=False, relation=_quoted(node.relation), index=node.idxname)
    if _reindexes_concurrently(node) and node.relation is not None:
        on_index = node.kind == enums.ReindexObjectType.REINDEX_OBJECT_INDEX
        return IndexBuild(
            reindex=True, relation=_quoted(node.relation), index=node.relation.relname if on_index else None
        )
    return None


def _reindexes_concurrently(node: ast.Node) -> bool:
    return isinstance(node, ast.ReindexStmt) and any(
        getattr(option, "defname", None) == "concurrently" for option in node.params or ()
    )


def _session_setting(node: ast.Node) -> bool:
    """SET/RESET, or `SELECT [pg_catalog.]set_config(...)` alone (as pg_dump writes it)."""
    if isinstance(node, ast.VariableSetStmt):
        return True
    if not isinstance(node, ast.SelectStmt) or node.fromClause or not node.targetList or len(node.targetList) != 1:
        return False
    call = node.targetList[0].val
    return isinstance(call, ast.FuncCall) and call.funcname[-1].sval == "set_config"


def _outside_transaction(node: ast.Node) -> str | None:
    for kind, name in _NEVER_IN_TRANSACTION.items():
        if isinstance(node, kind):
            return name
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if _reindexes_concurrently(node):
        return "REINDEX CONCURRENTLY"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    return None
