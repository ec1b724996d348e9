"""The safety policy: which traced migrations would block a live table, and the safe recipe for each.

Every rule is a pure function of one MigrationTrace (trace.py) returning Findings; it judges only
relations that existed before the migration (a table the migration creates is empty and nobody
uses it yet). Each finding names the file, the line, the lock and the recipe to write instead, as
strong_migrations prints them. Whether a finding is accepted (SAFETY_ACCEPTED in the migration)
is the caller's business (commands/safety.py). Invariant: the rules read the trace and nothing
else: no database, no settings, no files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dbmigrate.engine.statement_facts import column_default, with_concurrently, with_not_valid
from dbmigrate.engine.trace_model import LOCK_MODES, MigrationTrace, StatementTrace, blocks

_BLOCKS_WRITES = LOCK_MODES.index("SHARE")
_ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
_NEW_MIGRATION = "in a migration of its own (`make db-migrate-create NAME=...`)"
_NON_TRANSACTIONAL = "in a migration of its own made with `make db-migrate-create NAME=... TRANSACTION=0`"


@dataclass(frozen=True)
class Finding:
    rule: str
    migration: str
    file: str
    line: int | None
    lock: str  # e.g. "SHARE on users"
    problem: str
    recipe: str

    @property
    def where(self) -> str:
        return f"{self.file} line {self.line}" if self.line else self.file

    def summary(self) -> str:
        """One line: the migration, the file and line, the rule and what is wrong."""
        return f"{self.migration}: {self.where}: {self.rule}: {self.problem}"


def _rank(mode: str) -> int:
    return LOCK_MODES.index(mode) if mode in LOCK_MODES else -1


def _strongest(statement: StatementTrace, relation: str) -> str | None:
    modes = [lock.mode for lock in statement.locks if lock.relation == relation and lock.existed]
    return max(modes, key=_rank) if modes else None


def _finding(rule: str, trace: MigrationTrace, statement: StatementTrace, lock: str, problem: str, recipe: str):
    return Finding(rule, trace.migration, statement.file, statement.line, lock, problem, recipe)


def _lock_text(mode: str | None, relation: str) -> str:
    return f"{mode} on {relation}" if mode else f"a lock on {relation}"


# ---- the rules -------------------------------------------------------------------------------


def rewrites_table(trace: MigrationTrace) -> list[Finding]:
    """A table that existed is rewritten (a new relfilenode): ACCESS EXCLUSIVE for the whole copy."""
    found = []
    for statement in trace.statements:
        if statement.command == "TRUNCATE" or any(a.kind == "ALTER COLUMN TYPE" for a in statement.actions):
            continue  # TRUNCATE empties rather than copies; a type change has a rule of its own
        for change in statement.rewrites:
            if not change.existed or change.kind in ("index", "partitioned index"):
                continue
            mode = _strongest(statement, change.relation) or _ACCESS_EXCLUSIVE
            found.append(
                _finding(
                    "rewrites-table",
                    trace,
                    statement,
                    _lock_text(mode, change.relation),
                    f"{statement.command} rewrites {change.relation} under {mode}, which {blocks(mode)} on it "
                    "for as long as the copy takes, until commit",
                    _rewrite_recipe(statement, change.relation),
                )
            )
    return found


def changes_column_type(trace: MigrationTrace) -> list[Finding]:
    """ALTER COLUMN ... TYPE that rewrites the table (e.g. integer to bigint)."""
    found = []
    for statement in trace.statements:
        changes = [a for a in statement.actions if a.kind == "ALTER COLUMN TYPE"]
        rewritten = [c for c in statement.rewrites if c.existed and c.kind not in ("index", "partitioned index")]
        for change in rewritten if changes else []:
            mode = _strongest(statement, change.relation) or _ACCESS_EXCLUSIVE
            columns = ", ".join(f"{a.name} to {a.detail}" for a in changes)
            column, new_type = changes[0].name, changes[0].detail
            found.append(
                _finding(
                    "changes-column-type",
                    trace,
                    statement,
                    _lock_text(mode, change.relation),
                    f"changing {columns} rewrites {change.relation} under {mode}, which {blocks(mode)} on it "
                    "until commit",
                    "Instead, move the data to a new column while the table stays in use:\n"
                    f"-- 1. ALTER TABLE {change.relation} ADD COLUMN {column}_new {new_type};\n"
                    f"-- 2. keep {column}_new in step with {column} (a trigger, or the application writes both);\n"
                    f"-- 3. backfill {column}_new in batches {_NON_TRANSACTIONAL};\n"
                    f"-- 4. move reads to {column}_new, then drop {column} and rename {column}_new to {column}.\n"
                    "(varchar(n) to text or to a longer varchar, and numeric to unconstrained numeric, need no "
                    "rewrite.)",
                )
            )
    return found


def index_without_concurrently(trace: MigrationTrace) -> list[Finding]:
    """An index built (or rebuilt) on a table that existed, without CONCURRENTLY: SHARE or stronger."""
    found = []
    for statement in trace.statements:
        rewritten_tables = {c.relation for c in statement.rewrites if c.kind not in ("index", "partitioned index")}
        built = [c for c in statement.created if c.kind in ("index", "partitioned index")]
        rebuilt = [c for c in statement.rewrites if c.kind == "index" and c.table not in rewritten_tables]
        for index in built + rebuilt:
            table = index.table
            mode = _strongest(statement, table) if table else None
            if table is None or mode is None or _rank(mode) < _BLOCKS_WRITES:
                continue
            found.append(
                _finding(
                    "index-without-concurrently",
                    trace,
                    statement,
                    _lock_text(mode, table),
                    f"{statement.command} builds {index.relation} under {mode} on {table}, which {blocks(mode)} "
                    f"on {table} until the build ends",
                    _index_recipe(statement, index.relation, table, rebuilt=index in rebuilt),
                )
            )
    return found


def constraint_without_not_valid(trace: MigrationTrace) -> list[Finding]:
    """A FOREIGN KEY or CHECK added valid to a table that existed: a full scan under the lock."""
    found = []
    for statement in trace.statements:
        for event in statement.constraints:
            if not (event.existed and event.event == "added" and event.validated):
                continue
            if event.type not in ("CHECK", "FOREIGN KEY"):
                continue
            mode = _strongest(statement, event.table)
            safe = with_not_valid(statement.sql, event.name) or (
                f"ALTER TABLE {event.table} ADD CONSTRAINT {event.name} ... NOT VALID;"
            )
            found.append(
                _finding(
                    "constraint-without-not-valid",
                    trace,
                    statement,
                    _lock_text(mode, event.table),
                    f"{event.type} {event.name} is checked against every row of {event.table} while {mode or 'a lock'} "
                    f"{blocks(mode) if mode else 'is held'} on it",
                    "Instead, add it without checking the rows that are there (new rows are checked at once):\n"
                    f"{safe.rstrip(';')};\n"
                    f"-- then, {_NEW_MIGRATION}, check the old rows under SHARE UPDATE EXCLUSIVE "
                    "(reads and writes go on):\n"
                    f"ALTER TABLE {event.table} VALIDATE CONSTRAINT {event.name};",
                )
            )
    return found


def set_not_null_scans(trace: MigrationTrace) -> list[Finding]:
    """SET NOT NULL on a table that existed, with no validated CHECK (col IS NOT NULL): a full scan."""
    found = []
    for statement in trace.statements:
        table = statement.table or ""
        scanned = any(s.table == table and s.existed and s.purpose == "validate" for s in statement.scans)
        for action in statement.actions if scanned else []:
            if action.kind != "SET NOT NULL":
                continue
            mode = _strongest(statement, table) or _ACCESS_EXCLUSIVE
            check = f"{table}_{action.name}_not_null"
            found.append(
                _finding(
                    "set-not-null-scans",
                    trace,
                    statement,
                    _lock_text(mode, table),
                    f"SET NOT NULL on {table}.{action.name} scans every row under {mode}, which {blocks(mode)} on it",
                    "Instead, prove it first with a CHECK, so that SET NOT NULL needs no scan (PostgreSQL 12+):\n"
                    f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({action.name} IS NOT NULL) NOT VALID;\n"
                    f"-- {_NEW_MIGRATION}:\n"
                    f"ALTER TABLE {table} VALIDATE CONSTRAINT {check};\n"
                    f"-- {_NEW_MIGRATION}:\n"
                    f"ALTER TABLE {table} ALTER COLUMN {action.name} SET NOT NULL;\n"
                    f"ALTER TABLE {table} DROP CONSTRAINT {check};",
                )
            )
    return found


def slow_after_access_exclusive(trace: MigrationTrace) -> list[Finding]:
    """ACCESS EXCLUSIVE on a table that existed, then anything slow in the same transaction: the
    lock is held (every query on the table waits) for as long as the slow part takes."""
    found = []
    held: dict[str, StatementTrace] = {}  # table -> the statement that took ACCESS EXCLUSIVE on it
    for statement in trace.statements:
        slow = _slow(statement)
        if statement.transaction == "migration" and held and slow:
            table, taker = next(iter(held.items()))
            found.append(
                _finding(
                    "slow-after-access-exclusive",
                    trace,
                    statement,
                    f"{_ACCESS_EXCLUSIVE} on {table}",
                    f"{statement.command} {slow} while this transaction holds {_ACCESS_EXCLUSIVE} on {table} "
                    f"(taken by line {taker.line}: {taker.command}), so every query on {table} waits for it",
                    f"Instead, move it {_NEW_MIGRATION}, so the lock is released first; a backfill goes in batches "
                    f"{_NON_TRANSACTIONAL}, and VALIDATE CONSTRAINT in a migration that takes no stronger lock.",
                )
            )
        if statement.transaction == "migration":
            for lock in statement.locks:
                if lock.mode == _ACCESS_EXCLUSIVE and lock.existed and lock.kind in ("table", "partitioned table"):
                    held.setdefault(lock.relation, statement)
    return found


def no_lock_timeout(trace: MigrationTrace) -> list[Finding]:
    """A lock that blocks writes requested with lock_timeout off: behind one long query, it waits
    forever, and every query on the table queues behind it."""
    for statement in trace.statements:
        if statement.lock_timeout.strip() not in ("0", "0ms", "0s"):
            continue
        strong = [lock for lock in statement.locks if lock.existed and _rank(lock.mode) >= _BLOCKS_WRITES]
        if strong:
            lock = max(strong, key=lambda item: _rank(item.mode))
            return [
                _finding(
                    "no-lock-timeout",
                    trace,
                    statement,
                    _lock_text(lock.mode, lock.relation),
                    f"{statement.command} asks for {lock.mode} on {lock.relation} with lock_timeout off: if a long "
                    f"query holds {lock.relation}, it waits forever, and every later query on it queues behind it",
                    'Instead, keep a lock_timeout: remove LOCK_TIMEOUT = "0" (the default is ORION_LOCK_TIMEOUT, 5s) '
                    'or set a short one, e.g. LOCK_TIMEOUT = "5s"; a transactional migration that times out is '
                    "retried (LOCK_RETRIES).",
                )
            ]
    return []


def scans_under_lock(trace: MigrationTrace) -> list[Finding]:
    """Any other scan of a table that existed, to validate something, under a lock that blocks
    writes (a narrowing type change, ATTACH PARTITION with no matching CHECK, ...)."""
    found = []
    for statement in trace.statements:
        explained = {e.table for e in statement.constraints if e.event == "added" and e.validated}
        if any(a.kind == "SET NOT NULL" for a in statement.actions):
            explained.add(statement.table or "")
        for scan in statement.scans:
            mode = _strongest(statement, scan.table)
            if scan.purpose != "validate" or not scan.existed or scan.table in explained:
                continue
            if mode is None or _rank(mode) < _BLOCKS_WRITES:
                continue
            found.append(
                _finding(
                    "scans-under-lock",
                    trace,
                    statement,
                    _lock_text(mode, scan.table),
                    f"{statement.command} reads every row of {scan.table} to validate it under {mode}, which "
                    f"{blocks(mode)} on it",
                    "Instead, find the form that validates without the lock: a CHECK added NOT VALID and "
                    "validated in a later migration first (ATTACH PARTITION and SET NOT NULL then skip the scan), "
                    "or a new column and a batched backfill for a narrowing type change.",
                )
            )
    return found


RULES: dict[str, Callable[[MigrationTrace], list[Finding]]] = {
    "rewrites-table": rewrites_table,
    "changes-column-type": changes_column_type,
    "index-without-concurrently": index_without_concurrently,
    "constraint-without-not-valid": constraint_without_not_valid,
    "set-not-null-scans": set_not_null_scans,
    "slow-after-access-exclusive": slow_after_access_exclusive,
    "no-lock-timeout": no_lock_timeout,
    "scans-under-lock": scans_under_lock,
}


def findings(trace: MigrationTrace) -> list[Finding]:
    """Every rule's findings on `trace`, in the order of the statements."""
    found = [finding for rule in RULES.values() for finding in rule(trace)]
    order = {(s.file, s.line): s.number for s in trace.statements}
    return sorted(found, key=lambda f: (order.get((f.file, f.line), 0), f.rule))


# ---- recipes and what makes a statement slow ----------------------------------------------------


def _slow(statement: StatementTrace) -> str | None:
    """Why `statement` takes time in proportion to a table that existed (None if it does not)."""
    if any(c.existed and c.kind not in ("index", "partitioned index") for c in statement.rewrites):
        return "rewrites a table"
    if any(c.kind in ("index", "partitioned index") for c in statement.created if _on_existing(statement, c.table)):
        return "builds an index"
    if any(s.existed for s in statement.scans):
        return "reads a whole table"
    if statement.writes:
        return f"writes rows of {', '.join(statement.writes)}"
    return None


def _on_existing(statement: StatementTrace, table: str | None) -> bool:
    return any(lock.relation == table and lock.existed for lock in statement.locks)


def _rewrite_recipe(statement: StatementTrace, table: str) -> str:
    added = [a for a in statement.actions if a.kind == "ADD COLUMN" and a.has_default]
    if added:
        column = added[0]
        default = column_default(statement.sql, column.name) or "..."
        check = f"{table}_{column.name}_not_null"
        lines = [
            f"A volatile default ({default}) is computed for every row, so the whole table is copied. Instead:",
            f"ALTER TABLE {table} ADD COLUMN {column.name} {column.detail};",
            f"ALTER TABLE {table} ALTER COLUMN {column.name} SET DEFAULT {default};  -- new rows only",
            f"-- {_NON_TRANSACTIONAL}: backfill in batches, each its own transaction, e.g. repeat",
            f"UPDATE {table} SET {column.name} = {default} WHERE <key> IN "
            f"(SELECT <key> FROM {table} WHERE {column.name} IS NULL LIMIT 10000);",
        ]
        if column.not_null:
            lines += [
                f"-- {_NEW_MIGRATION}, NOT NULL without a scan under lock:",
                f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column.name} IS NOT NULL) NOT VALID;",
                f"-- {_NEW_MIGRATION}: ALTER TABLE {table} VALIDATE CONSTRAINT {check};",
                f"-- {_NEW_MIGRATION}: ALTER TABLE {table} ALTER COLUMN {column.name} SET NOT NULL;"
                f" ALTER TABLE {table} DROP CONSTRAINT {check};",
            ]
        return "\n".join(lines)
    if statement.command in ("VACUUM", "CLUSTER"):
        return f"Instead, compact {table} without the lock, e.g. with pg_repack, outside the migrations."
    if any(a.kind == "SET TABLESPACE" for a in statement.actions):
        return f"Instead, move {table} with a tool that copies while it stays in use (pg_repack --tablespace)."
    return (
        f"Instead, build the new shape beside {table} while it stays in use: a new column (or table), kept in step "
        f"by a trigger, backfilled in batches {_NON_TRANSACTIONAL}, then swapped in by a quick rename."
    )


def _index_recipe(statement: StatementTrace, index: str, table: str, rebuilt: bool) -> str:
    if rebuilt:
        return f"Instead, {_NON_TRANSACTIONAL}:\nREINDEX INDEX CONCURRENTLY {index};"
    constraint = [a for a in statement.actions if a.kind == "ADD CONSTRAINT" and a.detail in ("UNIQUE", "PRIMARY KEY")]
    if constraint:
        kind = constraint[0].detail
        return (
            f"Instead, build the index first, {_NON_TRANSACTIONAL}:\n"
            f"CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} (...);\n"
            f"-- then, {_NEW_MIGRATION}, a quick catalog change:\n"
            f"ALTER TABLE {table} ADD CONSTRAINT {constraint[0].name or index} {kind} USING INDEX {index};"
        )
    safe = with_concurrently(statement.sql) or f"CREATE INDEX CONCURRENTLY {index} ON {table} (...)"
    return (
        f"Instead, build it without blocking writes, {_NON_TRANSACTIONAL}:\n{safe};\n"
        "(If that build fails, it leaves an INVALID index: drop it with DROP INDEX CONCURRENTLY before retrying.)"
    )
