"""Concurrent resets: sixteen `reset` runs started at once all exit 0, one after another, and leave
the same databases as a single reset (the reset lock; DROP ... IF EXISTS; a concurrent CREATE
DATABASE tolerated)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from support import Databases, migration_ids

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
    assert dbs.sql("orion", "SELECT count(*) AS n FROM tenants")[0]["n"] > 0  # seeded once, not 16 times over
    dbs.cli("status", "--check")


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
