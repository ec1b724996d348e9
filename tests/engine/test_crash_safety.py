"""Crash safety, shown: kill -9 a migrating process at many moments; each time, the database holds
exactly the migrations recorded as applied, and a rerun completes."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from migration_files import write_sql_migration
from support import Databases, migration_ids

from dbmigrate.engine.lock import LOCK_KEY

STEPS = 6


def write_steps(project) -> list[str]:
    """Six steps of 0.3 s each. They are sent together (runner.apply_all), and a killed client's
    query runs on until the server's check for a dead client (within 1 s) stops it: steps that
    outlast that check let the kills below stop the run at different points."""
    ids = []
    for i in range(STEPS):
        migration_id = f"95{i}_step"
        write_sql_migration(
            project,
            "orion",
            migration_id,
            f"CREATE TABLE crash_{i} (id int); INSERT INTO crash_{i} VALUES (1); SELECT pg_sleep(0.3)",
            f"DROP TABLE crash_{i}",
        )
        ids.append(migration_id)
    return ids


def wait_for_no_migrator(dbs: Databases) -> None:
    """After a kill, the server notices the dead client (within ~1 s) and rolls it back."""
    deadline = time.monotonic() + 30
    while dbs.sql(
        "orion",
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'dbmigrate%'",
    ):
        assert time.monotonic() < deadline, "the killed migrator's session did not end"
        time.sleep(0.05)


def assert_database_matches_its_records(dbs: Databases, ids: list[str]) -> int:
    recorded = set(dbs.applied("orion"))
    history = {r["migration_id"] for r in dbs.sql("orion", "SELECT migration_id FROM dbmigrate_history")}
    tables = dbs.tables("orion")
    for i, migration_id in enumerate(ids):
        applied = migration_id in recorded
        assert (f"crash_{i}" in tables) == applied, f"{migration_id}: table and record disagree"
        assert (migration_id in history) == applied, f"{migration_id}: history and record disagree"
    assert len(dbs.applied("orion")) == len(recorded), "a migration was recorded twice"
    return sum(1 for i in ids if i in recorded)


def test_kill_9_at_many_moments_never_leaves_a_migration_half_applied(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    ids = write_steps(project)
    seen_progress = set()
    # Kill once the runner has committed `progress` of the steps, `jitter` seconds later: inside a
    # step's DDL (each sleeps 0.1 s), between steps, or while it records one.
    moments = [(progress, jitter) for progress in range(STEPS) for jitter in (0.0, 0.05, 0.13)]
    for progress, jitter in moments[::2]:
        runner = dbs.popen("migrate", "orion")
        _wait_for_progress(dbs, ids, progress, runner)
        time.sleep(jitter)
        runner.kill()
        runner.wait(timeout=10)
        wait_for_no_migrator(dbs)
        applied = assert_database_matches_its_records(dbs, ids)
        seen_progress.add(applied)
        if applied:
            dbs.cli("down", "orion", "--steps", str(applied))
        assert_database_matches_its_records(dbs, ids)
    assert len(seen_progress) >= 3, f"the kills all landed at the same point: {seen_progress}"
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + ids
    assert_database_matches_its_records(dbs, ids)


def _wait_for_progress(dbs: Databases, ids: list[str], progress: int, runner) -> None:
    deadline = time.monotonic() + 60
    while sum(1 for i in dbs.applied("orion") if i in ids) < progress and runner.poll() is None:
        assert time.monotonic() < deadline, f"no progress to {progress} steps"
        time.sleep(0.01)


def test_kill_9_while_waiting_for_the_lock_leaves_nothing_behind(project, dbs: Databases):
    ids = write_steps(project)

    async def scenario():
        holder = await asyncpg.connect(dbs.url("orion"))
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            runner = dbs.popen("migrate", "orion")
            await asyncio.sleep(1.0)
            assert runner.poll() is None  # waiting for the lock
            runner.kill()
            runner.wait(timeout=10)
        finally:
            await holder.close()

    asyncio.run(scenario())
    wait_for_no_migrator(dbs)
    assert dbs.applied("orion") == []
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + ids
    assert_database_matches_its_records(dbs, ids)
