"""INVALID indexes: what a failed or interrupted concurrent index build leaves behind, found by
name, shown by status, and dropped before the build runs again (as strong_migrations'
`remove_invalid_indexes` does before `add_index ..., algorithm: :concurrently`).

`CREATE [UNIQUE] INDEX CONCURRENTLY name` that fails (duplicates, lock_timeout, statement_timeout)
or whose runner dies leaves the index `name` INVALID: a rerun fails with "already exists", and with
`IF NOT EXISTS` it skips the INVALID index as if it were built. `REINDEX CONCURRENTLY` leaves
`<index>_ccnew` (and, failing after the swap, `<index>_ccold`) INVALID beside the index it rebuilds.

Invariant: an index is dropped only when it is INVALID, is a plain index (a partitioned index is
INVALID on purpose until its partitions are attached), is what the statement about to run builds
(by name, on the same table: `left_by`), and no session is building an index on that table right
now; and it is dropped with DROP INDEX CONCURRENTLY, by its schema-qualified name. Nothing here
imports the SQL parser: status and the trail (recorder.py) use it too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import asyncpg


class BuildInProgress(RuntimeError):
    """An INVALID leftover's table has an index build under way: nothing is dropped."""


@dataclass(frozen=True)
class IndexBuild:
    """An index a statement builds concurrently (statements.py reads it from the SQL)."""

    reindex: bool
    relation: str  # the table (CREATE INDEX, REINDEX TABLE) or the index (REINDEX INDEX), quoted for to_regclass
    index: str | None  # the index built or rebuilt; None for REINDEX TABLE and an unnamed CREATE INDEX

    @property
    def on_index(self) -> bool:
        """REINDEX INDEX: `relation` names the index, not its table."""
        return self.reindex and self.index is not None

    def record(self) -> str:
        """As the trail keeps it (recorder.py)."""
        return json.dumps({"reindex": self.reindex, "relation": self.relation, "index": self.index})

    @classmethod
    def from_record(cls, text: str | None) -> IndexBuild | None:
        try:
            fields = json.loads(text) if text else None
            return cls(bool(fields["reindex"]), str(fields["relation"]), fields["index"]) if fields else None
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class InvalidIndex:
    schema: str
    name: str
    table_schema: str
    table: str
    building_pid: int | None  # a session building an index on its table right now (it may be this one)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def qualified_table(self) -> str:
        return f"{self.table_schema}.{self.table}"


def left_by(build: IndexBuild, index: InvalidIndex) -> bool:
    """Whether `index` is what `build` leaves INVALID when it fails: the index it names, or a
    REINDEX's `_ccnew`/`_ccold` copy (of the index it names, or of any index of its table)."""
    if not build.reindex:
        return build.index is not None and index.name == build.index
    stem = re.escape(build.index) if build.index else ".+"
    return re.fullmatch(rf"{stem}_cc(new|old)\d*", index.name) is not None


# Plain indexes only (relkind 'i'); $1: a relation to_regclass reads, or NULL for every table;
# $2: whether $1 names an index (REINDEX INDEX), whose table is then the one searched.
_INVALID = """
SELECT n.nspname AS schema, c.relname AS name, tn.nspname AS table_schema, t.relname AS table,
       (SELECT min(p.pid) FROM pg_stat_progress_create_index p WHERE p.relid = i.indrelid) AS building_pid
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE NOT i.indisvalid AND c.relkind = 'i'
  AND ($1::text IS NULL OR i.indrelid = CASE
        WHEN $2 THEN (SELECT x.indrelid FROM pg_index x WHERE x.indexrelid = to_regclass($1))
        ELSE to_regclass($1)::oid END)
ORDER BY 1, 2
"""


async def invalid_indexes(conn: asyncpg.Connection, build: IndexBuild | None = None) -> list[InvalidIndex]:
    """The INVALID plain indexes of the database, or of the table `build` works on (its names
    resolved through this connection's search_path, as the statement's are)."""
    relation, on_index = (build.relation, build.on_index) if build else (None, False)
    return [InvalidIndex(**row) for row in await conn.fetch(_INVALID, relation, on_index)]


async def drop_leftovers(conn: asyncpg.Connection, build: IndexBuild) -> list[InvalidIndex]:
    """Drop what `build` left INVALID in an earlier attempt (see the module's invariant); return
    what was dropped. BuildInProgress, dropping nothing, when a session is building on that table."""
    found = [index for index in await invalid_indexes(conn, build) if left_by(build, index)]
    busy = next((index for index in found if index.building_pid is not None), None)
    if busy is not None:
        raise BuildInProgress(
            f"INVALID index {busy.qualified} may still be under construction: session pid {busy.building_pid} is "
            f"building an index on {busy.qualified_table} right now; wait for it to end, then migrate again"
        )
    for index in found:
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(index.schema)}.{_quote(index.name)}")
    return found


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
