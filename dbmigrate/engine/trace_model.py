"""The lock trace's records: what each statement of a migration took, rewrote, built, scanned and
validated (trace.py writes them, safety_rules.py judges them, commands/safety.py shows them).

Plain data, in the shape `make db-verify FORMAT=json` prints (schemas/trace.schema.json); relation
names are schema-qualified unless in `public`. Invariant: nothing here reads a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dbmigrate.engine.statement_facts import Action

# PostgreSQL's lock modes, weakest first, as the documentation names them.
LOCK_MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
KINDS = {
    "r": "table",
    "p": "partitioned table",
    "i": "index",
    "I": "partitioned index",
    "S": "sequence",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "c": "type",
}


def blocks(mode: str) -> str:
    """What a lock of `mode` on a table stops other sessions doing, in a few words."""
    if mode == "ACCESS EXCLUSIVE":
        return "blocks every read and write"
    if mode in ("EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE"):
        return "blocks writes"
    if mode == "SHARE UPDATE EXCLUSIVE":
        return "blocks only schema changes and VACUUM"
    return "blocks only ACCESS EXCLUSIVE (DDL)"


@dataclass(frozen=True)
class Lock:
    mode: str  # one of LOCK_MODES
    relation: str
    kind: str  # table, index, sequence, ...
    existed: bool  # the relation existed before this migration
    held_ms: float  # from the start of the statement that took it until it was released (commit)


@dataclass(frozen=True)
class RelationChange:
    relation: str
    kind: str
    existed: bool
    table: str | None = None  # the table an index belongs to


@dataclass(frozen=True)
class Scan:
    table: str
    existed: bool
    purpose: str  # "validate", "rewrite", "index build" or "query"


@dataclass(frozen=True)
class ConstraintEvent:
    name: str
    type: str  # CHECK, FOREIGN KEY, ...
    table: str
    existed: bool  # its table existed before this migration
    event: str  # "added" or "validated"
    validated: bool  # after the statement


@dataclass
class StatementTrace:
    number: int
    file: str
    line: int | None
    sql: str
    command: str
    table: str | None
    actions: list[Action]
    transaction: str  # "migration" (the migration's), "own" (one of its own) or "none" (sampled)
    duration_ms: float
    lock_timeout: str
    locks: list[Lock] = field(default_factory=list)  # taken by this statement
    rewrites: list[RelationChange] = field(default_factory=list)
    created: list[RelationChange] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    constraints: list[ConstraintEvent] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)  # existing tables whose rows an UPDATE/DELETE/... writes
    started_ms: float = 0.0  # since the migration started


@dataclass
class MigrationTrace:
    database: str
    migration: str
    file: str
    transactional: bool
    lock_timeout: str
    statement_timeout: str
    duration_ms: float = 0.0
    statements: list[StatementTrace] = field(default_factory=list)
