"""What one SQL statement is, read from PostgreSQL's parse tree (pglast): its command, the actions
of an ALTER TABLE, the tables it names and writes, whether it builds CONCURRENTLY; and the same
statement rewritten the safe way (CONCURRENTLY, NOT VALID) for a recipe.

The lock trace labels each statement with these facts, the safety rules pick their recipes by them,
and the rehearsal finds the tables the pending migrations touch. Invariant: facts come from the
parse tree alone, never from the text by pattern; SQL that does not parse has no facts (None).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pglast import ast, enums, parser

_COMMANDS = {
    ast.AlterTableStmt: "ALTER TABLE",
    ast.IndexStmt: "CREATE INDEX",
    ast.CreateStmt: "CREATE TABLE",
    ast.CreateTableAsStmt: "CREATE TABLE AS",
    ast.DropStmt: "DROP",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.InsertStmt: "INSERT",
    ast.MergeStmt: "MERGE",
    ast.SelectStmt: "SELECT",
    ast.TruncateStmt: "TRUNCATE",
    ast.DoStmt: "DO",
    ast.CallStmt: "CALL",
    ast.ReindexStmt: "REINDEX",
    ast.VacuumStmt: "VACUUM",
    ast.ClusterStmt: "CLUSTER",
    ast.RenameStmt: "RENAME",
    ast.CreateFunctionStmt: "CREATE FUNCTION",
    ast.CreateTrigStmt: "CREATE TRIGGER",
    ast.CommentStmt: "COMMENT",
    ast.VariableSetStmt: "SET",
    ast.LockStmt: "LOCK",
    ast.CopyStmt: "COPY",
    ast.CreateSeqStmt: "CREATE SEQUENCE",
    ast.ViewStmt: "CREATE VIEW",
    ast.CreateExtensionStmt: "CREATE EXTENSION",
    ast.CreateEnumStmt: "CREATE TYPE",
    ast.AlterEnumStmt: "ALTER TYPE",
}

# ALTER TABLE subcommands, as a reader writes them (pglast's AlterTableType names otherwise).
_ACTIONS = {
    enums.AlterTableType.AT_AddColumn: "ADD COLUMN",
    enums.AlterTableType.AT_ColumnDefault: "SET DEFAULT",
    enums.AlterTableType.AT_DropNotNull: "DROP NOT NULL",
    enums.AlterTableType.AT_SetNotNull: "SET NOT NULL",
    enums.AlterTableType.AT_AlterColumnType: "ALTER COLUMN TYPE",
    enums.AlterTableType.AT_AddConstraint: "ADD CONSTRAINT",
    enums.AlterTableType.AT_ValidateConstraint: "VALIDATE CONSTRAINT",
    enums.AlterTableType.AT_DropConstraint: "DROP CONSTRAINT",
    enums.AlterTableType.AT_DropColumn: "DROP COLUMN",
    enums.AlterTableType.AT_SetTableSpace: "SET TABLESPACE",
    enums.AlterTableType.AT_SetLogged: "SET LOGGED",
    enums.AlterTableType.AT_SetUnLogged: "SET UNLOGGED",
    enums.AlterTableType.AT_AttachPartition: "ATTACH PARTITION",
    enums.AlterTableType.AT_DetachPartition: "DETACH PARTITION",
    enums.AlterTableType.AT_AddIdentity: "ADD IDENTITY",
    enums.AlterTableType.AT_AddIndex: "ADD INDEX",
}

_CONSTRAINT_TYPES = {
    enums.ConstrType.CONSTR_CHECK: "CHECK",
    enums.ConstrType.CONSTR_FOREIGN: "FOREIGN KEY",
    enums.ConstrType.CONSTR_PRIMARY: "PRIMARY KEY",
    enums.ConstrType.CONSTR_UNIQUE: "UNIQUE",
    enums.ConstrType.CONSTR_EXCLUSION: "EXCLUDE",
    enums.ConstrType.CONSTR_NOTNULL: "NOT NULL",
}


@dataclass(frozen=True)
class Action:
    """One subcommand of an ALTER TABLE: `kind` ("SET NOT NULL"), on `name` (a column or a
    constraint), with `detail` (the new type, the column's definition, the constraint's)."""

    kind: str
    name: str | None = None
    detail: str | None = None  # ADD COLUMN and ALTER COLUMN TYPE: the type; ADD CONSTRAINT: CHECK, FOREIGN KEY, ...
    not_valid: bool = False  # ADD CONSTRAINT ... NOT VALID
    has_default: bool = False  # ADD COLUMN ... DEFAULT <expression> (column_default gives it)
    not_null: bool = False  # ADD COLUMN ... NOT NULL


@dataclass(frozen=True)
class Facts:
    command: str
    table: str | None  # the table an ALTER TABLE, CREATE INDEX or DML statement is about
    actions: tuple[Action, ...]
    concurrently: bool
    relations: tuple[str, ...]  # every relation the statement names, as written (schema.name or name)
    writes: tuple[str, ...]  # tables whose rows an UPDATE, DELETE, MERGE or INSERT ... SELECT writes


@functools.lru_cache(maxsize=4096)
def facts(sql: str) -> Facts | None:
    """The facts of one statement; None when `sql` does not parse or holds not exactly one."""
    try:
        parsed = parser.parse_sql(sql)
    except parser.ParseError:
        return None
    if len(parsed) != 1:
        return None
    node = parsed[0].stmt
    names = _Names()
    names(node)
    table = _table(node)
    writes = (table,) if table and _writes_rows(node) else ()
    return Facts(
        command=_command(node),
        table=table,
        actions=tuple(_actions(node)),
        concurrently=bool(getattr(node, "concurrent", False)),
        relations=tuple(dict.fromkeys(names.found)),
        writes=writes,
    )


def relations_of(sql_statements: list[str]) -> set[str]:
    """Every relation named by any of the statements (those that do not parse name none)."""
    found: set[str] = set()
    for sql in sql_statements:
        fact = facts(sql)
        if fact is not None:
            found.update(fact.relations)
    return found


def with_concurrently(sql: str) -> str | None:
    """A CREATE INDEX written to build CONCURRENTLY (None if `sql` is not one)."""
    node = _one(sql)
    if not isinstance(node, ast.IndexStmt):
        return None
    node.concurrent = True
    return _deparse(node)


def with_not_valid(sql: str, constraint: str | None) -> str | None:
    """An ALTER TABLE whose ADD CONSTRAINT `constraint` (any, when None) is NOT VALID; None if none."""
    node = _one(sql)
    if not isinstance(node, ast.AlterTableStmt):
        return None
    changed = False
    for cmd in node.cmds or ():
        definition = cmd.def_
        adds = cmd.subtype == enums.AlterTableType.AT_AddConstraint and isinstance(definition, ast.Constraint)
        if adds and (constraint is None or definition.conname == constraint):
            definition.skip_validation = True
            definition.initially_valid = False
            changed = True
    return _deparse(node) if changed else None


def column_default(sql: str, column: str | None) -> str | None:
    """The DEFAULT expression an ALTER TABLE ... ADD COLUMN `column` gives, as SQL (None if none)."""
    node = _one(sql)
    for cmd in getattr(node, "cmds", None) or ():
        definition = cmd.def_
        if isinstance(definition, ast.ColumnDef) and definition.colname == column:
            default = _default_of(definition)
            return _deparse(default) if default is not None else None
    return None


def _deparse(node) -> str:
    # pglast's printers take a while to import, and only recipes need them: imported here.
    from pglast.stream import RawStream

    return RawStream()(node)


def _one(sql: str):
    try:
        parsed = parser.parse_sql(sql)
    except parser.ParseError:
        return None
    return parsed[0].stmt if len(parsed) == 1 else None


class _Names:
    """Every RangeVar in a parse tree, in order (a walk over the nodes' fields)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def __call__(self, node) -> None:
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple | list):
                stack.extend(reversed(item))
            elif isinstance(item, ast.Node):
                if isinstance(item, ast.RangeVar):
                    self.found.append(_name(item))
                stack.extend(reversed([getattr(item, name) for name in item.__slots__]))


def _name(range_var) -> str:
    return f"{range_var.schemaname}.{range_var.relname}" if range_var.schemaname else range_var.relname


def _command(node) -> str:
    if isinstance(node, ast.IndexStmt):
        unique = "UNIQUE " if node.unique else ""
        return f"CREATE {unique}INDEX{' CONCURRENTLY' if node.concurrent else ''}"
    for kind, name in _COMMANDS.items():
        if isinstance(node, kind):
            return name
    return type(node).__name__.removesuffix("Stmt")


def _table(node) -> str | None:
    relation = getattr(node, "relation", None)
    if isinstance(relation, ast.RangeVar) and not isinstance(node, ast.CreateStmt):
        return _name(relation)
    return None


def _writes_rows(node) -> bool:
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
        return True
    # INSERT ... SELECT reads other tables in proportion to their size; INSERT ... VALUES does not.
    select = getattr(node, "selectStmt", None)
    return isinstance(node, ast.InsertStmt) and isinstance(select, ast.SelectStmt) and bool(select.fromClause)


def _actions(node) -> list[Action]:
    if not isinstance(node, ast.AlterTableStmt):
        return []
    actions = []
    for cmd in node.cmds or ():
        kind = _ACTIONS.get(cmd.subtype, str(cmd.subtype.name).removeprefix("AT_"))
        definition = cmd.def_
        if cmd.subtype == enums.AlterTableType.AT_AddConstraint and isinstance(definition, ast.Constraint):
            actions.append(
                Action(
                    kind,
                    definition.conname,
                    _CONSTRAINT_TYPES.get(definition.contype, str(definition.contype.name)),
                    not_valid=bool(definition.skip_validation),
                )
            )
        elif cmd.subtype == enums.AlterTableType.AT_AddColumn and isinstance(definition, ast.ColumnDef):
            constraints = definition.constraints or ()
            actions.append(
                Action(
                    kind,
                    definition.colname,
                    type_name(definition.typeName),
                    has_default=_default_of(definition) is not None,
                    not_null=any(c.contype == enums.ConstrType.CONSTR_NOTNULL for c in constraints),
                )
            )
        elif cmd.subtype == enums.AlterTableType.AT_AlterColumnType and isinstance(definition, ast.ColumnDef):
            actions.append(Action(kind, cmd.name, type_name(definition.typeName)))
        else:
            actions.append(Action(kind, cmd.name))
    return actions


def _default_of(definition):
    return next(
        (c.raw_expr for c in definition.constraints or () if c.contype == enums.ConstrType.CONSTR_DEFAULT), None
    )


# pg_catalog's internal type names, as SQL spells them.
_TYPE_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "bool": "boolean",
    "float4": "real",
    "float8": "double precision",
    "bpchar": "char",
    "timestamptz": "timestamptz",
    "timetz": "timetz",
}


def type_name(node) -> str:
    """A TypeName node as SQL: `bigint`, `varchar(255)`, `numeric(20,4)`, `text[]`."""
    names = [getattr(part, "sval", "") for part in node.names or ()]
    base = names[-1] if names else "?"
    if len(names) > 1 and names[0] != "pg_catalog":
        base = ".".join(names)
    base = _TYPE_NAMES.get(base, base) if names[:1] == ["pg_catalog"] else base
    modifiers = [str(getattr(getattr(m, "val", None), "ival", "")) for m in node.typmods or ()]
    if modifiers and all(modifiers):
        base += f"({','.join(modifiers)})"
    return base + "[]" * len(node.arrayBounds or ())
