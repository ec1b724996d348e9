"""repair of a non-transactional migration that failed midway: it forgets the failure and nothing
else (the statement that finished stays done, the schema is untouched, the migration is still not
applied), and the fixed file then applies once."""

from __future__ import annotations

import json

from migration_files import write_sql_migration
from support import Databases, migration_ids

FIRST = "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_a ON users (email);\n"


def _row(dbs: Databases, migration_id: str) -> dict:
    report = json.loads(dbs.cli("status", "orion", "--format", "json", expect=0).stdout)
    return next(row for row in report["databases"][0]["migrations"] if row["id"] == migration_id)


def _indexes(dbs: Databases) -> set[str]:
    return {r["indexname"] for r in dbs.sql("orion", "SELECT indexname FROM pg_indexes WHERE tablename = 'users'")}


def test_repair_of_a_failed_non_transactional_migration_forgets_the_failure_and_the_fixed_file_applies(
    project, dbs: Databases
):
    dbs.cli("migrate", "orion")
    half = f"{len(migration_ids('orion')) + 1:03d}_half"
    write_sql_migration(
        project,
        "orion",
        half,
        FIRST + "CREATE INDEX CONCURRENTLY idx_x ON nowhere (id);",
        "SELECT 1",
        transactional=False,
    )
    dbs.cli("migrate", "orion", expect=1)
    row = _row(dbs, half)
    assert (row["state"], row["statements_done"], row["statements_total"]) == ("failed", 1, 2)

    repaired = dbs.cli("repair", "orion")
    assert repaired.stdout.strip() == f"orion: cleared the failure of {half} (it is still not applied)"
    assert _row(dbs, half)["state"] == "pending"
    assert "idx_users_a" in _indexes(dbs)  # repair changes the bookkeeping only, never the schema
    assert dbs.applied("orion") == migration_ids("orion")
    dbs.cli("status", "orion", "--check", expect=1)  # still not applied

    write_sql_migration(
        project,
        "orion",
        half,
        FIRST + "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_b ON users (username);",
        "SELECT 1",
        transactional=False,
    )
    assert f"orion: applied {half}" in dbs.cli("migrate", "orion").stdout
    assert {"idx_users_a", "idx_users_b"} <= _indexes(dbs)
    assert dbs.applied("orion") == [*migration_ids("orion"), half]
    dbs.cli("status", "orion", "--check")
    assert dbs.cli("repair", "orion").stdout.strip() == "orion: nothing to repair"
