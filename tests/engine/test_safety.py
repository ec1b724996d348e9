"""AC5 "parallel-safe migration execution", and nothing half-applied when things go wrong."""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
from migration_files import write_python_migration, write_sql_migration
from support import Databases, migration_ids

from dbmigrate.engine.lock import LOCK_KEY


def test_eight_concurrent_migrators_on_an_empty_database_each_migration_recorded_once(dbs: Databases):
    runners = [dbs.popen("migrate", "all") for _ in range(8)]
    results = [(r.wait(timeout=180), r.stdout.read(), r.stderr.read()) for r in runners]
    for code, _, err in results:
        assert code == 0, err
    for name in ("orion", "rfq", "marketdata"):
        assert dbs.applied(name) == migration_ids(name)
    applied_lines = sum(out.count("orion: applied 001_initial_schema") for _, out, _ in results)
    assert applied_lines == 1


def test_a_failing_migration_is_rolled_back_and_later_ones_do_not_run(project, dbs: Databases):
    write_sql_migration(project, "orion", "902_good", "CREATE TABLE good (id int)", "DROP TABLE good")
    write_sql_migration(
        project,
        "orion",
        "903_bad",
        "CREATE TABLE half_done (id int); ALTER TABLE no_such_table ADD COLUMN x int",
        "DROP TABLE half_done",
    )
    write_sql_migration(project, "orion", "904_after", "CREATE TABLE after_bad (id int)", "DROP TABLE after_bad")
    result = dbs.cli("migrate", "orion", expect=1)
    err_lines = result.stderr.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("error: orion: applying 903_bad failed and was rolled back")
    assert 'relation "no_such_table" does not exist' in err_lines[0]
    assert dbs.applied("orion") == migration_ids("orion") + ["902_good"]
    tables = dbs.tables("orion")
    assert "good" in tables and "half_done" not in tables and "after_bad" not in tables


def test_a_migrator_killed_mid_migration_leaves_it_unapplied_and_a_rerun_completes(project, dbs: Databases):
    write_python_migration(
        project,
        "orion",
        "902_slow",
        """
manager = MigrationManager(migration_id=ID, app_name="orion")

async def create_then_wait():
    engine = engine_finder()
    await engine.run_ddl("CREATE TABLE slow_table (id int)")
    if os.environ.get("SLOW_MIGRATION"):
        await engine.run_ddl("SELECT pg_sleep(60)")

async def drop():
    await engine_finder().run_ddl("DROP TABLE slow_table")

manager.add_raw(create_then_wait)
manager.add_raw_backwards(drop)
return manager
""",
    )
    dbs.extra_env["SLOW_MIGRATION"] = "1"
    runner = dbs.popen("migrate", "orion")
    _wait_until(lambda: _backend_sleeping(dbs), timeout=60)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    # The server notices the dead client and rolls its transaction back.
    _wait_until(lambda: not _backend_sleeping(dbs), timeout=30)
    assert dbs.applied("orion") == migration_ids("orion")
    assert "slow_table" not in dbs.tables("orion")

    del dbs.extra_env["SLOW_MIGRATION"]
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + ["902_slow"]
    assert "slow_table" in dbs.tables("orion")


def test_a_runner_that_cannot_get_the_lock_in_time_names_the_holder(dbs: Databases):
    dbs.extra_env["ORION_MIGRATE_LOCK_WAIT"] = "0.5"

    async def hold_lock_and_migrate():
        holder = await asyncpg.connect(dbs.url("orion"), server_settings={"application_name": "deploy-job-42"})
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            return await asyncio.to_thread(dbs.cli, "migrate", "orion", expect=1)
        finally:
            await holder.close()

    err = asyncio.run(hold_lock_and_migrate()).stderr.strip()
    assert err.startswith("error: orion: another migration holds the lock (pid ")
    assert "deploy-job-42" in err and "waited 0.5 s" in err
    assert dbs.applied("orion") == []


def test_a_waiting_runner_proceeds_when_the_lock_is_released(dbs: Databases):
    async def hold_then_release():
        holder = await asyncpg.connect(dbs.url("orion"))
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        runner = dbs.popen("migrate", "orion")
        await asyncio.sleep(1.0)
        assert runner.poll() is None  # still waiting
        await holder.close()
        return runner.wait(timeout=60)

    assert asyncio.run(hold_then_release()) == 0
    assert dbs.applied("orion") == migration_ids("orion")


def _backend_sleeping(dbs: Databases) -> bool:
    rows = dbs.sql(
        "orion",
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(60)%' "
        "AND pid <> pg_backend_pid()",
    )
    return bool(rows)


def _wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)
