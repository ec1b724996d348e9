"""Concurrent resets: sixteen `reset` runs started at once all exit 0, one after another, and leave
the same databases as a single reset (the reset lock; DROP ... IF EXISTS; a concurrent CREATE
DATABASE tolerated); migrators started while a real reset runs wait for it, and all succeed."""

from __future__ import annotations

import asyncio
import subprocess
import time

import asyncpg
from migration_files import write_sql_migration
from support import Databases, migration_ids, run_sql

from dbmigrate.commands import reset
from dbmigrate.core.config import DATABASES, load_settings

RUNNERS = 16


def race(dbs: Databases, runners: int, *args: str) -> list[tuple[int, str, float]]:
    """Start `runners` CLI runs at once; return each one's exit code, stderr and seconds taken."""
    started = time.monotonic()
    processes = [dbs.popen(*args) for _ in range(runners)]
    results = []
    for process in processes:
        _, err = process.communicate(timeout=300)
        results.append((process.returncode, err, time.monotonic() - started))
    return results


def test_sixteen_concurrent_resets_all_succeed_in_turn(dbs: Databases):
    # Generous, bounded: sixteen resets in turn on a 2-core machine.
    dbs.extra_env["ORION_MIGRATE_LOCK_WAIT"] = "240"
    results = race(dbs, RUNNERS, "reset")
    failures = [(code, err) for code, err, _ in results if code != 0]
    assert not failures, f"{len(failures)} of {RUNNERS} resets failed, e.g. {failures[0]}"
    assert any("reset: waiting for another reset of" in err for _, err, _ in results)  # waiters say so
    slowest = max(seconds for _, _, seconds in results)
    print(f"{RUNNERS} concurrent resets: all exited 0, the last after {slowest:.1f} s")
    for name in DATABASES:
        assert dbs.applied(name) == migration_ids(name)
    # Seeded once, not 16 times over: the fixture project's development seeds hold 3 tenants.
    assert dbs.sql("orion", "SELECT count(*) AS n FROM tenants")[0]["n"] == 3
    dbs.cli("status", "--check")


MIGRATORS = 21


def test_migrators_started_while_a_real_reset_runs_wait_for_it_and_all_succeed(dbs: Databases):
    # ORION_ENV=development: the reset drops, creates, migrates and seeds for real (no template).
    dbs.extra_env.update(ORION_ENV="development", ORION_MIGRATE_LOCK_WAIT="240")
    dbs.cli("migrate", "orion")
    dbs.sql("orion", "CREATE TABLE before_the_reset (id int)")  # gone once the reset dropped the database
    # A pending migration that, on the database before the reset, runs until the reset drops that
    # database (WITH (FORCE)) under the migrators that started before it, however slow the machine
    # is to start the reset; on the database the reset makes, it runs at once.
    slow = f"{len(migration_ids('orion')) + 1:03d}_slow"
    until_dropped = "SELECT pg_sleep(CASE WHEN to_regclass('before_the_reset') IS NULL THEN 0 ELSE 120 END)"
    write_sql_migration(dbs.cwd, "orion", slow, f"CREATE TABLE slow (id int); {until_dropped}", "DROP TABLE slow")
    early = [dbs.popen("migrate", "orion") for _ in range(3)]
    # The reset starts once one of them is inside the slow migration: it must then wait for the reset.
    # Only this test's database: the server is shared by the tests running beside it.
    sleeping = "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(CASE%'"
    dbname = f"{dbs.prefix}_{DATABASES['orion'].default_dbname}"
    deadline = time.monotonic() + 60
    while not run_sql(dbs.server_url, sleeping, dbname):
        assert time.monotonic() < deadline and all(m.poll() is None for m in early), [m.poll() for m in early]
        time.sleep(0.05)
    resetting = dbs.popen("reset", "orion")
    migrators = list(early)
    for _ in range(MIGRATORS - len(early)):  # spread over the reset: while the database is gone, after
        migrators.append(dbs.popen("migrate", "orion"))
        time.sleep(0.1)
    out, err = resetting.communicate(timeout=300)
    assert resetting.returncode == 0, err
    results = [(m.wait(timeout=300), *m.communicate()) for m in migrators]
    failed = [(code, err) for code, _, err in results if code != 0]
    assert not failed, f"{len(failed)} of {MIGRATORS} migrators failed during a reset, e.g. {failed[0]}"
    assert any("waiting for the reset under way to end" in err for _, _, err in results)
    assert dbs.applied("orion") == [*migration_ids("orion"), slow]  # each migration once
    assert dbs.sql("orion", "SELECT to_regclass('before_the_reset') IS NULL AS gone")[0]["gone"]
    assert dbs.sql("orion", "SELECT count(*) AS n FROM tenants")[0]["n"] == 3  # seeded by the reset, once
    dbs.cli("status", "orion", "--check")


def _settings(dbs: Databases):
    import os

    saved = dict(os.environ)
    os.environ.update(dbs.env)
    try:
        return load_settings(dbs.cwd)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_migrator_finding_its_database_missing_while_a_reset_holds_the_lock_waits_for_it(dbs: Databases):
    settings = _settings(dbs)
    dbname = f"{dbs.prefix}_{DATABASES['orion'].default_dbname}"

    async def reset_by_hand() -> subprocess.Popen:
        async with reset.reset_lock(settings, [DATABASES["orion"]]):
            await asyncio.to_thread(run_sql, dbs.server_url, f'DROP DATABASE "{dbname}"')
            migrator = dbs.popen("migrate", "orion")
            waiter = f"dbmigrate waiting for a reset of {dbname}"
            deadline = time.monotonic() + 60
            while not await asyncio.to_thread(
                run_sql, dbs.server_url, "SELECT 1 FROM pg_stat_activity WHERE application_name = $1", waiter
            ):
                assert migrator.poll() is None and time.monotonic() < deadline, migrator.communicate()
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            assert migrator.poll() is None, migrator.communicate()  # still waiting, not failed
            await asyncio.to_thread(run_sql, dbs.server_url, f'CREATE DATABASE "{dbname}"')
        return migrator

    migrator = asyncio.run(reset_by_hand())
    out, err = migrator.communicate(timeout=60)
    assert migrator.returncode == 0, err
    assert err.strip() == f"{dbname}: waiting for the reset under way to end (up to 60 s)"
    assert dbs.applied("orion") == migration_ids("orion")


def test_a_migrator_finding_its_database_missing_with_no_reset_under_way_says_so_at_once(dbs: Databases):
    dbname = f"{dbs.prefix}_{DATABASES['orion'].default_dbname}"
    run_sql(dbs.server_url, f'DROP DATABASE "{dbname}"')
    started = time.monotonic()
    result = dbs.cli("migrate", "orion", expect=1)
    assert time.monotonic() - started < 30  # no wait: nothing holds the reset lock
    assert result.stderr == f"error: database {dbname!r} does not exist on " + result.stderr.split(" on ", 1)[1]
    assert "create it with `make db-create`" in result.stderr and "waiting" not in result.stderr


def test_a_reset_waits_for_the_running_one_and_gives_up_after_the_bounded_wait(dbs: Databases):
    """A held reset lock makes a second reset wait, then fail with one line naming the holder."""
    env = dbs.env

    async def hold_and_run() -> str:
        import os

        saved = dict(os.environ)
        os.environ.update(env)
        try:
            settings = load_settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        async with reset.reset_lock(settings, [DATABASES["rfq"]]):
            dbs.extra_env["ORION_MIGRATE_LOCK_WAIT"] = "1"
            started = time.monotonic()
            result = await asyncio.to_thread(dbs.cli, "reset", "rfq", expect=1)
            assert time.monotonic() - started < 30
            return result.stderr

    err = asyncio.run(hold_and_run())
    assert len(err.strip().splitlines()) == 1, err
    assert "another reset holds the reset lock" in err and "ORION_MIGRATE_LOCK_WAIT" in err
    assert "pid " in err and "None" not in err
    assert dbs.applied("rfq") == []  # untouched: the waiter dropped nothing


def test_create_databases_tolerates_a_concurrent_create(dbs: Databases):
    """Two runs creating the same missing databases at once: both exit 0."""
    for name in DATABASES:
        asyncio.run(_drop(dbs, name))
    results = race(dbs, 8, "create-databases")
    assert all(code == 0 for code, _, _ in results), results
    results = race(dbs, 8, "drop-databases")
    assert all(code == 0 for code, _, _ in results), results


async def _drop(dbs: Databases, name: str) -> None:
    conn = await asyncpg.connect(dbs.server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbs.prefix}_{DATABASES[name].default_dbname}" WITH (FORCE)')
    finally:
        await conn.close()
