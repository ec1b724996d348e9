"""SQL read by PostgreSQL's own parser (pglast wraps libpg_query, the server's grammar).

A migration's SQL is split into statements here, never with regular expressions, so
dollar-quoted bodies, `DO` blocks, `BEGIN ATOMIC` functions, comments and string literals holding
semicolons are all read the way the server reads them. Each statement knows its line (in the SQL
text, and so in the file it came from) and whether it may run inside a transaction block.

Invariant: the work is linear in the length of the SQL, whatever its number of statements (a
50 MB file of INSERTs is a real migration). The parser finds where each statement starts and
ends without building its syntax tree; lines are counted once, from one statement to the next;
only a statement whose first keyword could make it one that may not run in a transaction (or
that controls the transaction) is parsed into a tree, on its own.
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
        # Where each statement lies (character offsets), found by the parser, no tree built.
        slices = parser.split(sql, with_parser=True, only_slices=True)
    except parser.ParseError as error:
        message, position = (error.args + (0,))[:2] if error.args else (str(error), 0)
        line = sql.count("\n", 0, max(int(position) - 1, 0)) + first_line
        raise SQLSyntaxError(str(message), line) from None
    statements = []
    line, counted_to = first_line, 0
    for where in slices:
        line += sql.count("\n", counted_to, where.start)  # from the previous statement on: linear
        counted_to = where.start
        text = sql[where].strip()
        node = _tree(text)
        statements.append(
            Statement(
                sql=text,
                line=line,
                outside_transaction=_outside_transaction(node) if node is not None else None,
                transaction_control=isinstance(node, ast.TransactionStmt),
            )
        )
    return statements


# The first keywords (as the scanner names them) of every statement `_outside_transaction` or
# ast.TransactionStmt can be: ALTER SYSTEM, CREATE/DROP DATABASE|TABLESPACE|SUBSCRIPTION|INDEX
# CONCURRENTLY, REINDEX, VACUUM; BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT,
# RELEASE, PREPARE TRANSACTION. Any other statement may run in a transaction and is not parsed.
_MAYBE_SPECIAL = {
    *("ALTER", "CREATE", "DROP", "REINDEX", "VACUUM"),
    *("BEGIN_P", "START", "COMMIT", "END_P", "ROLLBACK", "ABORT_P", "SAVEPOINT", "RELEASE", "PREPARE"),
}
_COMMENTS = {"C_COMMENT", "SQL_COMMENT"}
_FIRST_KEYWORD_WINDOW = 512  # characters scanned for the first keyword (comments may come first)


def _tree(text: str) -> ast.Node | None:
    """The syntax tree of one statement, when its first keyword says it may need one; else None."""
    try:
        tokens = parser.scan(text[:_FIRST_KEYWORD_WINDOW])
        first = next((token.name for token in tokens if token.name not in _COMMENTS), None)
    except parser.ParseError:  # the window ends inside a literal or comment: ask the parser
        first = None
    if first is not None and first not in _MAYBE_SPECIAL:
        return None
    return parser.parse_sql(text)[0].stmt


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
