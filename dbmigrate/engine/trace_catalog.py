"""What the lock trace reads from PostgreSQL after each statement, in one round trip: this
backend's relation locks, every user relation's file (relfilenode), each table's sequential scans
counted so far in the transaction, every constraint and whether it is validated, and the
lock_timeout in force; and a sample of another backend's locks (for a statement that must run
outside a transaction). Invariant: these queries read the catalog and the statistics only, so
they take no lock on a user relation and never change what the migration's statements see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from dbmigrate.engine.trace_model import LOCK_MODES

PG_LOCK_NAMES = {"".join(w.title() for w in mode.split()) + "Lock": mode for mode in LOCK_MODES}

# One round trip after each statement: this backend's relation locks, every user relation's file,
# each table's seq scans counted so far (pg_stat_xact_user_tables' seq_scan), every constraint, and
# the lock_timeout in force. Object IDs as bigint: JSON gives oid values as strings.
SNAPSHOT = """
SELECT json_build_object(
  'r', (SELECT coalesce(json_agg(json_build_array(c.oid::bigint, CASE WHEN n.nspname = 'public' THEN c.relname
                ELSE n.nspname || '.' || c.relname END, c.relkind, c.relfilenode::bigint, i.indrelid::bigint)), '[]')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
        WHERE c.oid >= 16384 AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'),
  'l', (SELECT coalesce(json_agg(json_build_array(l.relation::bigint, l.mode)), '[]') FROM pg_locks l
        WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND l.relation >= 16384),
  's', (SELECT coalesce(json_agg(json_build_array(c.oid::bigint, n)), '[]')
        FROM pg_class c, pg_stat_get_xact_numscans(c.oid) n
        WHERE c.oid >= 16384 AND c.relkind IN ('r', 'm', 'p') AND n > 0),
  'c', (SELECT coalesce(json_agg(json_build_array(oid::bigint, conname, contype, conrelid::bigint, convalidated)), '[]')
        FROM pg_constraint WHERE conrelid >= 16384),
  't', current_setting('lock_timeout'))
"""
# A sample of another backend's relation locks, and whether it waits on the sampling one.
SAMPLE = """
SELECT coalesce(array_agg(l.relation::bigint || ' ' || l.mode) FILTER (WHERE l.relation IS NOT NULL), '{}'),
       $2 = ANY(pg_blocking_pids($1))
FROM pg_locks l WHERE l.pid = $1 AND l.locktype = 'relation' AND l.granted AND l.relation >= 16384
"""
CONSTRAINT_TYPES = {
    "c": "CHECK",
    "f": "FOREIGN KEY",
    "p": "PRIMARY KEY",
    "u": "UNIQUE",
    "x": "EXCLUDE",
    "n": "NOT NULL",
}


@dataclass
class Snapshot:
    relations: dict[int, tuple[str, str, int, int | None]]  # oid -> (name, relkind, filenode, table oid)
    locks: set[tuple[int, str]]
    scans: dict[int, int]
    constraints: dict[int, tuple[str, str, int, bool]]  # oid -> (name, contype, table oid, validated)
    lock_timeout: str


async def snapshot(conn: asyncpg.Connection) -> Snapshot:
    document = json.loads(await conn.fetchval(SNAPSHOT))
    return Snapshot(
        relations={oid: (name, kind, node, table) for oid, name, kind, node, table in document["r"]},
        locks={(oid, PG_LOCK_NAMES.get(mode, mode)) for oid, mode in document["l"]},
        scans=dict(document["s"]),
        constraints={oid: (name, kind, table, valid) for oid, name, kind, table, valid in document["c"]},
        lock_timeout=document["t"],
    )
