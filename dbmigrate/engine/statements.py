"""SQL read by PostgreSQL's own parser (pglast wraps libpg_query, the server's grammar).

A migration's SQL is split into statements here, never with regular expressions, so
dollar-quoted bodies, `DO` blocks, `BEGIN ATOMIC` functions, comments and string literals holding
semicolons are all read the way the server reads them. Each statement knows its line (in the SQL
text, and so in the file it came from) and whether it may run inside a transaction block.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parser

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
            )
        )
    return statements


def is_empty(sql: str) -> bool:
    """True when `sql` holds no statement (only comments and white space); False if it does not parse."""
    try:
        return not parser.parse_sql(sql)
    except parser.ParseError:
        return False


def _outside_transaction(node: ast.Node) -> str | None:
    for kind, name in _NEVER_IN_TRANSACTION.items():
        if isinstance(node, kind):
            return name
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt) and any(
        getattr(option, "defname", None) == "concurrently" for option in node.params or ()
    ):
        return "REINDEX CONCURRENTLY"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    return None
