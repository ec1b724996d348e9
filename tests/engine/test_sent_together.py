"""Consecutive transactional migrations are sent to the server together (runner.apply_all): one
round trip for many, each still in its own transaction with its own bookkeeping, and an error
stops the rest, so what applied is always the migrations before the one that failed.

Which query a statement came in is read from the server itself: `statement_timestamp()` is when
the server received the query message, `now()` when the transaction began.
"""

from __future__ import annotations

import re

import pytest
from migration_files import write_sql_migration
from support import Databases, hold_table_lock, migration_ids

from dbmigrate.engine.runner import BATCH_MIGRATIONS

SEEN = "CREATE TABLE IF NOT EXISTS seen (id text, query_at timestamptz, transaction_id text)"


def write_seen(project, ids: list[str]) -> None:
    for migration_id in ids:
        write_sql_migration(
            project,
            "orion",
            migration_id,
            f"{SEEN}; INSERT INTO seen VALUES ('{migration_id}', statement_timestamp(), pg_current_xact_id()::text)",
            f"DELETE FROM seen WHERE id = '{migration_id}'",
        )


def next_ids(count: int, name: str) -> list[str]:
    first = len(migration_ids("orion")) + 1
    return [f"{number:03d}_{name}_{number}" for number in range(first, first + count)]


def test_consecutive_migrations_arrive_in_one_query_per_batch_each_in_its_own_transaction(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    count = BATCH_MIGRATIONS + 5  # two batches
    ids = next_ids(count, "seen")
    write_seen(project, ids)
    out = dbs.cli("migrate", "orion").stdout
    rows = dbs.sql("orion", "SELECT id, query_at, transaction_id FROM seen ORDER BY id")
    assert [row["id"] for row in rows] == ids
    assert len({row["query_at"] for row in rows}) == 2, "not sent in two queries"
    assert len({row["transaction_id"] for row in rows}) == count, "two migrations shared a transaction"
    # Every one is recorded, and its line prints the duration recorded.
    assert dbs.applied("orion") == migration_ids("orion") + ids
    recorded = {
        row["migration_id"]: row["duration_ms"]
        for row in dbs.sql("orion", "SELECT migration_id, duration_ms FROM dbmigrate_history")
    }
    printed = dict(re.findall(r"orion: applied (\S+) \((\d+) ms\)", out))
    assert {i: int(printed[i]) for i in ids} == {i: recorded[i] for i in ids}


def test_a_failure_inside_a_batch_keeps_the_migrations_before_it_and_runs_none_after_it(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    before, failing, after = next_ids(5, "part")[:2], next_ids(5, "part")[2], next_ids(5, "part")[3:]
    write_seen(project, before + after)
    write_sql_migration(
        project, "orion", failing, f"{SEEN}; INSERT INTO seen VALUES ('{failing}', now(), '-'); SELECT 1/0", "SELECT 1"
    )
    failed = dbs.cli("migrate", "orion", expect=1)
    assert f"orion: applying {failing} failed and was rolled back; no later migration ran" in failed.stderr
    assert "division by zero" in failed.stderr
    assert re.findall(r"orion: applied (\S+) ", failed.stdout)[-2:] == before
    assert dbs.applied("orion") == migration_ids("orion") + before
    assert [row["id"] for row in dbs.sql("orion", "SELECT id FROM seen ORDER BY id")] == before
    assert dbs.sql("orion", f"SELECT 1 FROM dbmigrate_history WHERE migration_id = '{failing}'") == []
    # Fixed, the rest applies.
    write_seen(project, [failing])
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + before + [failing] + after


def test_a_lock_timeout_inside_a_batch_is_retried_alone_with_the_migrations_before_it_kept(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    ids = next_ids(3, "lock")
    write_seen(project, [ids[0], ids[2]])
    write_sql_migration(project, "orion", ids[1], "ALTER TABLE users ADD COLUMN x int", "ALTER TABLE users DROP x")
    holder = hold_table_lock(dbs, "users")
    try:
        dbs.extra_env.update(ORION_LOCK_TIMEOUT="100ms", ORION_LOCK_RETRIES="1")
        failed = dbs.cli("migrate", "orion", expect=1)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert f"orion: applied {ids[0]} " in failed.stdout
    assert failed.stdout.count(f"orion: {ids[1]} hit lock_timeout on a busy table; retrying in 1 s") == 1
    assert "stayed locked past lock_timeout 100ms (2 attempt(s))" in failed.stderr
    assert dbs.applied("orion") == migration_ids("orion") + ids[:1]
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + ids


@pytest.mark.timing
def test_each_migration_of_a_batch_is_timed_and_stamped_on_its_own_not_from_the_batch_start(project, dbs: Databases):
    """Every transaction of one query shares now() (the query's arrival), so a duration taken from
    it would grow along the batch: 200, 400, 600 ms for three steps of 200 ms each."""
    dbs.cli("migrate", "orion")
    ids = next_ids(3, "slow")
    for migration_id in ids:
        write_sql_migration(project, "orion", migration_id, "SELECT pg_sleep(0.2)", "SELECT 1")
    dbs.cli("migrate", "orion")
    rows = dbs.sql(
        "orion",
        "SELECT migration_id, duration_ms, recorded_at FROM dbmigrate_history WHERE migration_id = ANY($1::text[]) "
        "ORDER BY migration_id",
        ids,
    )
    assert all(200 <= row["duration_ms"] < 500 for row in rows), [row["duration_ms"] for row in rows]
    stamps = [row["recorded_at"] for row in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert all(gap >= 0.2 for gap in gaps), gaps


def test_a_statement_the_server_cannot_parse_is_reported_for_its_own_migration_and_those_before_it_apply(
    project, dbs: Databases
):
    """The server parses a whole query before running any of it. A statement only a newer server
    parses (a virtual generated column, PostgreSQL 18; pglast reads that grammar) stops every
    migration sent with it: they run again one at a time, so the ones before it apply."""
    version = dbs.sql("orion", "SELECT current_setting('server_version_num')::int AS v")[0]["v"]
    if version >= 180000:
        pytest.skip("PostgreSQL 18 parses virtual generated columns: the robustness run on 14 has this case")
    dbs.cli("migrate", "orion")
    ids = next_ids(3, "newer")
    write_seen(project, [ids[0], ids[2]])
    write_sql_migration(
        project,
        "orion",
        ids[1],
        f"{SEEN}; ALTER TABLE seen ADD COLUMN doubled int GENERATED ALWAYS AS (1) VIRTUAL",
        "ALTER TABLE seen DROP COLUMN doubled",
    )
    failed = dbs.cli("migrate", "orion", expect=1)
    assert f"orion: applying {ids[1]} failed and was rolled back; no later migration ran" in failed.stderr
    assert "syntax error" in failed.stderr
    assert dbs.applied("orion") == migration_ids("orion") + ids[:1]
