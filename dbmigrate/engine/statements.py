"""SQL read by PostgreSQL's own parser (pglast wraps libpg_query, the server's grammar).

A migration's SQL is split into statements here, never with regular expressions, so
dollar-quoted bodies, `DO` blocks, `BEGIN ATOMIC` functions, comments and string literals holding
semicolons are all read the way the server reads them. Each statement knows its line (in the SQL
text, and so in the file it came from), whether it may run inside a transaction block, which
index it builds concurrently (so a failed or killed build's INVALID leftover can be found by
name: leftovers.py), whether it only changes the session's settings, and its digest (what a
non-transactional migration's trail records of each statement that finished).

Invariant: the work is linear in the length of the SQL, whatever its number of statements and
characters (a 50 MB file of INSERTs is a real migration). Where each statement lies comes from the
parser's result in its binary form, read only as far as each statement's byte offset and length
(pglast's own offsets are turned into character offsets by a scan per statement, which with
non-ASCII text grows with the square of the length); lines are counted once, from one statement
to the next; only a statement whose kind of node (the first field of its tree, also read from the
binary form) could make it one of those kinds (one that may not run in a transaction, controls the
transaction, builds an index concurrently or sets a setting) is parsed again, on its own, into a
tree read as JSON (linear too, where pglast's tree is not).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import sys
from dataclasses import dataclass

from dbmigrate.engine.leftovers import IndexBuild


def _pglast_parser():
    """pglast's parser, without running pglast's AST and enum modules until something uses them.

    The parser (a C extension) imports `pglast.ast` and `pglast.enums` when it loads, but needs them
    only to build parse_sql's Python tree, which this module never asks for (it reads the protobuf
    and JSON forms). Run up front they are 19 of the 22 ms pglast takes to import: a tenth of a
    from-empty migrate's own work on a 338-migration history. So, when pglast is not imported yet,
    both are put in place as lazy modules (importlib.util.LazyLoader), set on the package before it
    runs so that its `from . import enums` and the parser's `from . import ast, enums` take them as
    they are; each one runs, whole, on its first use (statement_facts.py, pglast's printers)."""
    if "pglast" not in sys.modules:
        spec = importlib.util.find_spec("pglast")
        package = importlib.util.module_from_spec(spec)
        for name in ("ast", "enums"):
            sub = importlib.machinery.PathFinder.find_spec(f"pglast.{name}", spec.submodule_search_locations)
            sub.loader = importlib.util.LazyLoader(sub.loader)
            module = importlib.util.module_from_spec(sub)
            sub.loader.exec_module(module)
            setattr(package, name, module)
        sys.modules["pglast"] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules["pglast"]
            raise
        for name in ("ast", "enums"):
            sys.modules[f"pglast.{name}"] = getattr(package, name)
    from pglast import parser

    return parser


parser = _pglast_parser()

# Statements PostgreSQL refuses inside a transaction block ("cannot run inside a transaction block"),
# by the name of their node in the parser's tree.
_NEVER_IN_TRANSACTION = {
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}
# One statement of each kind of node whose fields matter here: those above, the CONCURRENTLY ones
# (an index built or dropped, a reindex), VACUUM, transaction control, the session settings (SET,
# RESET, SELECT set_config(...)). A statement of any other kind (CREATE TABLE, ALTER TABLE, a
# function, an INSERT...) is none of these, and is never parsed again.
_SAMPLES = {
    "AlterSystemStmt": "ALTER SYSTEM SET work_mem = 1",
    "CreatedbStmt": "CREATE DATABASE d",
    "DropdbStmt": "DROP DATABASE d",
    "CreateTableSpaceStmt": "CREATE TABLESPACE s LOCATION '/s'",
    "DropTableSpaceStmt": "DROP TABLESPACE s",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION s CONNECTION 'c' PUBLICATION p",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION s",
    "IndexStmt": "CREATE INDEX i ON t (c)",
    "DropStmt": "DROP INDEX i",
    "ReindexStmt": "REINDEX INDEX i",
    "VacuumStmt": "VACUUM",
    "TransactionStmt": "BEGIN",
    "VariableSetStmt": "SET work_mem = 1",
    "SelectStmt": "SELECT 1",
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
        tree = parser.parse_sql_protobuf(sql)
    except parser.ParseError as error:
        message, position = (error.args + (0,))[:2] if error.args else (str(error), 0)
        line = sql.count("\n", 0, max(int(position or 0) - 1, 0)) + first_line
        raise SQLSyntaxError(str(message), line) from None
    utf8 = sql.encode("utf-8")  # the parser's offsets count bytes of this
    statements = []
    line, counted_to = first_line, 0
    for start, length, kind in _statement_bytes(tree):
        line += utf8.count(b"\n", counted_to, start)  # from the previous statement on: linear
        counted_to = start
        text = utf8[start : start + length if length else len(utf8)].decode("utf-8").strip()
        node, fields = _tree(text, kind)
        statements.append(
            Statement(
                sql=text,
                line=line,
                outside_transaction=_outside_transaction(node, fields),
                transaction_control=node == "TransactionStmt",
                index_build=_index_build(node, fields),
                session_setting=_session_setting(node, fields),
            )
        )
    return statements


def is_empty(sql: str) -> bool:
    """True when `sql` holds no statement (only comments and white space); False if it does not parse."""
    try:
        return not _statement_bytes(parser.parse_sql_protobuf(sql))
    except parser.ParseError:
        return False


def _statement_bytes(tree: bytes) -> list[tuple[int, int, int]]:
    """(byte offset, byte length, kind) of each statement, read from the parser's protobuf result:
    `ParseResult { int32 version = 1; repeated RawStmt stmts = 2; }`, `RawStmt { Node stmt = 1;
    int32 stmt_location = 2; int32 stmt_len = 3; }` (pg_query.proto). A statement's tree is skipped
    over by its length, never decoded; a length of 0 means "to the end of the text"."""
    found: list[tuple[int, int, int]] = []
    position, end = 0, len(tree)
    while position < end:
        tag, position = _varint(tree, position)
        if tag & 7 == 0:  # ParseResult.version
            _, position = _varint(tree, position)
            continue
        size, position = _varint(tree, position)
        if tag >> 3 == 2:  # one RawStmt
            found.append(_raw_statement(tree, position, position + size))
        position += size
    return found


def _raw_statement(tree: bytes, position: int, end: int) -> tuple[int, int, int]:
    """(offset, length, kind): `kind` is the number of the field its `Node { oneof node {...} }` sets,
    which names the kind of statement (`_special_kinds`)."""
    fields = {2: 0, 3: 0}  # proto3 leaves zeros out
    kind = 0
    while position < end:
        tag, position = _varint(tree, position)
        if tag & 7 == 2:  # RawStmt.stmt: the tree, skipped but for its first field's number
            size, position = _varint(tree, position)
            if size:
                kind = _varint(tree, position)[0] >> 3
            position += size
        else:
            fields[tag >> 3], position = _varint(tree, position)
    return fields[2], fields[3], kind


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _tree(text: str, kind: int) -> tuple[str | None, dict]:
    """(the name of its node, its fields) of one statement, when it is of a kind that may matter
    (`_SAMPLES`); else (None, {})."""
    return _node(text) if kind in _SPECIAL_KINDS else (None, {})


def _node(statement: str) -> tuple[str, dict]:
    """(the name of its node, its fields) of one statement, from the parser's tree as JSON."""
    ((node, fields),) = json.loads(parser.parse_sql_json(statement))["stmts"][0]["stmt"].items()
    return node, fields


def _special_kinds() -> frozenset[int]:
    """The kind numbers of `_SAMPLES`' nodes, as this build of the parser numbers them (learnt from
    the parser itself, so they follow pglast's protocol whatever its version)."""
    if unsampled := _NEVER_IN_TRANSACTION.keys() - _SAMPLES.keys():  # never parsed again: never found
        raise RuntimeError(f"statements._SAMPLES has no statement of {', '.join(sorted(unsampled))}")
    kinds = set()
    for name, sample in _SAMPLES.items():
        ((_, _, kind),) = _statement_bytes(parser.parse_sql_protobuf(sample))
        node, _ = _node(sample)
        if node != name or kind == 0:
            raise RuntimeError(f"pglast reads {sample!r} as {node} (kind {kind}), not {name}")
        kinds.add(kind)
    return frozenset(kinds)


_SPECIAL_KINDS = _special_kinds()


def _quoted(range_var: dict) -> str:
    parts = (
        [range_var.get("schemaname"), range_var["relname"]] if range_var.get("schemaname") else [range_var["relname"]]
    )
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _index_build(node: str | None, fields: dict) -> IndexBuild | None:
    if node == "IndexStmt" and fields.get("concurrent"):
        return IndexBuild(reindex=False, relation=_quoted(fields["relation"]), index=fields.get("idxname"))
    if _reindexes_concurrently(node, fields) and fields.get("relation") is not None:
        on_index = fields.get("kind") == "REINDEX_OBJECT_INDEX"
        relation = fields["relation"]
        return IndexBuild(reindex=True, relation=_quoted(relation), index=relation["relname"] if on_index else None)
    return None


def _reindexes_concurrently(node: str | None, fields: dict) -> bool:
    return node == "ReindexStmt" and any(
        option.get("DefElem", {}).get("defname") == "concurrently" for option in fields.get("params", ())
    )


def _session_setting(node: str | None, fields: dict) -> bool:
    """SET/RESET, or `SELECT [pg_catalog.]set_config(...)` alone (as pg_dump writes it)."""
    if node == "VariableSetStmt":
        return True
    targets = fields.get("targetList") or []
    if node != "SelectStmt" or fields.get("fromClause") or len(targets) != 1:
        return False
    call = targets[0].get("ResTarget", {}).get("val", {}).get("FuncCall")
    return call is not None and call["funcname"][-1].get("String", {}).get("sval") == "set_config"


def _outside_transaction(node: str | None, fields: dict) -> str | None:
    if node in _NEVER_IN_TRANSACTION:
        return _NEVER_IN_TRANSACTION[node]
    if node == "IndexStmt" and fields.get("concurrent"):
        return "CREATE INDEX CONCURRENTLY"
    if node == "DropStmt" and fields.get("concurrent"):
        return "DROP INDEX CONCURRENTLY"
    if _reindexes_concurrently(node, fields):
        return "REINDEX CONCURRENTLY"
    if node == "VacuumStmt" and fields.get("is_vacuumcmd"):
        return "VACUUM"
    return None
