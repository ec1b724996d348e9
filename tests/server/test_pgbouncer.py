"""Through a real PgBouncer in transaction pooling (Debian's package) in front of a private server:
concurrent runners apply each migration once and commit it with its bookkeeping, the schema is
the one a direct run builds, a killed runner's lease lapses, and what cannot work there is
refused in one line. Skipped, with the reason, where pgbouncer is not installed, and failed instead
in CI (ORION_REQUIRE_PGBOUNCER=1)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from migration_files import write_sql_migration
from pgbouncer_server import PgBouncer
from pgbouncer_server import pooled_and_direct as _databases
from pgbouncer_server import running_pgbouncer as _bouncer
from private_server import PrivateServer
from support import Databases, migration_ids, run_sql

from dbmigrate.core.config import DATABASES
from dbmigrate.engine.lease import _CREATE as CREATE_LEASE_TABLE

pytestmark = pytest.mark.pgbouncer  # skipped without pgbouncer, failed instead in CI (conftest.py)

LEASE_LINE = "the migration lock is a lease in table dbmigrate_lock"


@pytest.fixture(scope="module")
def pgbouncer(private_server: PrivateServer) -> Iterator[PgBouncer]:
    """pool_mode = transaction, 4 server connections per database for all clients, no
    ignore_startup_parameters: as Debian ships it."""
    with _bouncer(private_server) as bouncer:
        yield bouncer


@pytest.fixture
def through_pgbouncer(
    private_server: PrivateServer, pgbouncer: PgBouncer, tmp_path: Path
) -> Iterator[tuple[Databases, Databases]]:
    with _databases(private_server, pgbouncer, tmp_path / "project") as pair:
        yield pair


def test_eight_concurrent_runs_through_pgbouncer_apply_each_migration_once_and_build_the_direct_schema(
    through_pgbouncer,
):
    pooled, direct = through_pgbouncer
    runners = [pooled.popen("migrate", "all") for _ in range(8)]
    results = [(runner.wait(timeout=180), *runner.communicate()) for runner in runners]
    for code, out, err in results:
        assert code == 0, f"a runner exited {code}: {out}\n{err}"
        assert "client_connection_check_interval" not in err
    # A runner that finds nothing left to do takes no lock, so says nothing of one; those that lock say which.
    assert any(LEASE_LINE in out for _, out, _ in results)
    direct.cli("migrate", "all")
    for name in DATABASES:
        assert pooled.applied(name) == migration_ids(name)  # each once, in order
        assert pooled.catalog(name) == direct.catalog(name)
        history = pooled.sql(name, "SELECT count(*) AS n FROM dbmigrate_history WHERE state = 'applied'")
        assert history[0]["n"] == len(migration_ids(name))  # every migration committed with its bookkeeping
    applied_lines = [line for _, out, _ in results for line in out.splitlines() if ": applied " in line]
    assert len(applied_lines) == sum(len(migration_ids(name)) for name in DATABASES)


def test_a_direct_connection_keeps_the_advisory_lock_and_makes_no_lease_table(through_pgbouncer):
    _, direct = through_pgbouncer
    result = direct.cli("migrate", "all")
    assert LEASE_LINE not in result.stdout
    assert direct.sql("orion", "SELECT to_regclass('dbmigrate_lock') IS NULL AS absent")[0]["absent"]


def test_pgbouncer_that_ignores_our_startup_parameters_is_still_detected(private_server, tmp_path):
    options = {"ignore_startup_parameters": "client_connection_check_interval,statement_timeout"}
    with (
        _bouncer(private_server, **options) as bouncer,
        _databases(private_server, bouncer, tmp_path / "project") as (pooled, _),
    ):
        result = pooled.cli("migrate", "orion")
        assert LEASE_LINE in result.stdout
        assert pooled.applied("orion") == migration_ids("orion")


def test_a_lapsed_lease_is_taken_over_and_a_live_one_makes_waiters_fail_naming_its_holder(through_pgbouncer):
    pooled, _ = through_pgbouncer
    run_sql(pooled.url("orion"), CREATE_LEASE_TABLE)
    take = (
        "INSERT INTO dbmigrate_lock (name, owner, holder, acquired_at, expires_at) "
        "VALUES ('migrate', 'ghost', 'ghost runner', now(), now() + make_interval(secs => $1))"
    )
    run_sql(pooled.url("orion"), take, 60.0)
    pooled.extra_env["ORION_MIGRATE_LOCK_WAIT"] = "1"
    refused = pooled.cli("migrate", "orion", expect=1)
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "another migration holds the lock (a lease of ghost runner" in refused.stderr
    assert pooled.applied("orion") == []

    run_sql(pooled.url("orion"), "UPDATE dbmigrate_lock SET expires_at = now() + interval '2 seconds'")
    pooled.extra_env["ORION_MIGRATE_LOCK_WAIT"] = "30"
    started = time.monotonic()
    pooled.cli("migrate", "orion")
    assert time.monotonic() - started >= 1.0  # it waited for the lapse
    assert pooled.applied("orion") == migration_ids("orion")
    assert run_sql(pooled.url("orion"), "SELECT owner FROM dbmigrate_lock")[0]["owner"] is None  # released


def test_a_runner_killed_mid_migration_through_pgbouncer_leaves_a_lease_that_lapses_and_nothing_applied_twice(
    through_pgbouncer, tmp_path
):
    pooled, direct = through_pgbouncer
    number = len(migration_ids("orion")) + 1
    slow = f"{number:03d}_slow_table"
    write_sql_migration(
        pooled.cwd, "orion", slow, "CREATE TABLE slow_t (id int); SELECT pg_sleep(4);", "DROP TABLE slow_t"
    )
    pooled.extra_env.update(ORION_LOCK_LEASE="2", ORION_MIGRATE_LOCK_WAIT="60")
    victim = pooled.popen("migrate", "orion")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it inside the slow migration's transaction
        rows = run_sql(  # pg_stat_activity shows the whole server: ask it directly
            direct.url("orion"),
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND pid <> pg_backend_pid()",
        )
        if rows:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    second = pooled.cli("migrate", "orion", timeout=120)
    assert f"applied {slow}" in second.stdout
    assert pooled.applied("orion") == [*migration_ids("orion"), slow]


def test_a_non_transactional_migration_through_pgbouncer_is_refused_in_one_line(through_pgbouncer, tmp_path):
    pooled, _ = through_pgbouncer
    before = migration_ids("orion")
    concurrent = f"{len(before) + 1:03d}_index_concurrently"
    write_sql_migration(
        pooled.cwd,
        "orion",
        concurrent,
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t ON audit_log (id)",
        "DROP INDEX CONCURRENTLY IF EXISTS idx_t",
        transactional=False,
    )
    result = pooled.cli("migrate", "orion", expect=1)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{concurrent} is not transactional" in result.stderr
    assert "different server connection" in result.stderr
    assert pooled.applied("orion") == []  # refused before anything of the run ran
    assert not pooled.sql("orion", "SELECT 1 FROM pg_indexes WHERE indexname = 'idx_t'")


def test_a_migration_longer_than_the_lease_keeps_its_lock_by_renewing_it(through_pgbouncer, tmp_path):
    pooled, direct = through_pgbouncer
    slow = f"{len(migration_ids('orion')) + 1:03d}_slow_table"
    write_sql_migration(
        pooled.cwd, "orion", slow, "CREATE TABLE slow_t (id int); SELECT pg_sleep(5);", "DROP TABLE slow_t"
    )
    pooled.extra_env.update(ORION_LOCK_LEASE="1.5", ORION_MIGRATE_LOCK_WAIT="60")
    holder = pooled.popen("migrate", "orion")
    lease = "SELECT expires_at FROM dbmigrate_lock WHERE owner IS NOT NULL"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        direct.sql(
            "orion", "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()"
        )
    ):
        time.sleep(0.05)
    first = run_sql(pooled.url("orion"), lease)[0]["expires_at"]
    waiter = pooled.popen("migrate", "orion")  # starts inside the slow migration, waits for the lock
    time.sleep(2)
    renewed = run_sql(pooled.url("orion"), lease)[0]["expires_at"]
    assert renewed > first  # renewed from the holder's second connection while its first is busy
    (code, out, err), (waited, waited_out, waited_err) = (
        (p.wait(timeout=60), *p.communicate()) for p in (holder, waiter)
    )
    assert code == 0 and waited == 0, f"{err}\n{waited_err}"
    assert f"applied {slow}" in out and "lost the migration lock" not in out + err
    assert "up to date, nothing to migrate" in waited_out
    assert pooled.applied("orion") == [*migration_ids("orion"), slow]


def test_pgbouncer_in_session_mode_with_orion_pooler_session_keeps_the_advisory_lock_and_runs_concurrently(
    private_server, tmp_path
):
    with (
        _bouncer(private_server, pool_mode="session") as bouncer,
        _databases(private_server, bouncer, tmp_path / "project") as (pooled, _),
    ):
        concurrent = f"{len(migration_ids('orion')) + 1:03d}_index_concurrently"
        write_sql_migration(
            pooled.cwd,
            "orion",
            concurrent,
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t ON audit_log (id)",
            "DROP INDEX CONCURRENTLY IF EXISTS idx_t",
            transactional=False,
        )
        pooled.extra_env["ORION_POOLER"] = "session"
        result = pooled.cli("migrate", "orion")
        assert LEASE_LINE not in result.stdout
        assert f"applied {concurrent}" in result.stdout
        assert pooled.applied("orion") == [*migration_ids("orion"), concurrent]


@pytest.mark.timing
def test_a_runner_paused_past_its_lease_stops_before_its_next_migration_once_another_took_over(through_pgbouncer):
    """The fence: runner A holds the lease, is paused (SIGSTOP) while loading its migrations until
    its lease lapses; runner B takes the lease over and applies them; A, resumed, runs none of them
    and says why."""
    pooled, _ = through_pgbouncer
    first, second = (f"{len(migration_ids('orion')) + n:03d}_{name}" for n, name in ((1, "slow_to_load"), (2, "next")))
    # Loading happens under the lock, before the first migration's transaction: a slow import keeps
    # A there, outside any transaction, where pausing it holds up nobody but itself. The file says
    # when its import begins, so A is paused there, after it read the state under the lease, not
    # between claiming the lease and reading the state (paused there, it would find everything
    # applied by B and rightly exit 0: CI failed so on a slow machine).
    loading = pooled.cwd / "loading"
    path = write_sql_migration(pooled.cwd, "orion", first, "CREATE TABLE fenced (id int)", "DROP TABLE fenced")
    path.write_text(f"import pathlib, time\npathlib.Path({str(loading)!r}).touch()\ntime.sleep(3)\n" + path.read_text())
    write_sql_migration(pooled.cwd, "orion", second, "ALTER TABLE fenced ADD COLUMN x int", "SELECT 1")
    pooled.cli("migrate", "orion", "--to", migration_ids("orion")[-1])  # the fixture's own, so A has only ours left
    pooled.extra_env.update(ORION_LOCK_LEASE="2", ORION_MIGRATE_LOCK_WAIT="60")
    runner_a = pooled.popen("migrate", "orion")
    deadline = time.monotonic() + 60
    while not loading.exists():
        assert runner_a.poll() is None and time.monotonic() < deadline, runner_a.communicate()
        time.sleep(0.05)
    runner_a.send_signal(signal.SIGSTOP)
    try:
        # Paused as the lease's owner (its expiry may be near already: the import's sleep blocks renewal).
        assert run_sql(pooled.url("orion"), "SELECT 1 FROM dbmigrate_lock WHERE owner IS NOT NULL")
        time.sleep(3)  # past the lease of 2 s: A renews nothing while paused
        runner_b = pooled.cli("migrate", "orion", timeout=120)
        assert f"applied {first}" in runner_b.stdout and f"applied {second}" in runner_b.stdout
    finally:
        runner_a.send_signal(signal.SIGCONT)
    out, err = runner_a.communicate(timeout=60)
    assert runner_a.returncode == 1, out + err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"orion: lost the migration lock before {first}" in err
    assert "another runner took it over" in err and f"{first} did not run" in err
    assert "applied" not in out
    assert pooled.applied("orion") == [*migration_ids("orion"), first, second]  # each once: B's
    history = pooled.sql("orion", "SELECT count(*) AS n FROM dbmigrate_history WHERE state = 'applied'")
    assert history[0]["n"] == len(migration_ids("orion")) + 2


def test_orion_pooler_none_through_pgbouncer_detects_nothing_and_pgbouncer_refuses_the_startup_parameters(
    through_pgbouncer,
):
    pooled, _ = through_pgbouncer
    pooled.extra_env["ORION_POOLER"] = "none"  # the default, auto, would detect PgBouncer and migrate
    result = pooled.cli("migrate", "orion", expect=1)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "unsupported startup parameter" in result.stderr
    assert pooled.applied("orion") == []


def test_orion_pooler_transaction_on_a_direct_connection_takes_the_lease_lock(through_pgbouncer):
    _, direct = through_pgbouncer
    direct.extra_env["ORION_POOLER"] = "transaction"  # auto would see no pooler and take the advisory lock
    result = direct.cli("migrate", "orion")
    assert LEASE_LINE in result.stdout
    assert direct.sql("orion", "SELECT count(*) AS n FROM dbmigrate_lock")[0]["n"] == 1
    assert direct.applied("orion") == migration_ids("orion")


def test_orion_pooler_none_on_a_direct_connection_migrates_with_the_advisory_lock(through_pgbouncer):
    _, direct = through_pgbouncer
    direct.extra_env["ORION_POOLER"] = "none"
    result = direct.cli("migrate", "orion")
    assert LEASE_LINE not in result.stdout
    assert direct.sql("orion", "SELECT to_regclass('dbmigrate_lock') IS NULL AS absent")[0]["absent"]
    assert direct.applied("orion") == migration_ids("orion")


def test_status_down_seed_and_a_fleet_work_through_pgbouncer(through_pgbouncer, tmp_path):
    pooled, _ = through_pgbouncer
    pooled.cli("migrate", "all")
    status = pooled.cli("status", "all", "--check").stdout
    assert status.count("2 applied, 0 pending") == 3
    document = json.loads(pooled.cli("status", "all", "--format", "json").stdout)
    assert [(r["database"], r["ok"]) for r in document["databases"]] == [
        ("orion", True),
        ("rfq", True),
        ("marketdata", True),
    ]

    down = pooled.cli("down", "orion")
    assert "orion: reverted 002_audit_log_append_only" in down.stdout
    assert pooled.applied("orion") == ["001_initial_schema"]
    pooled.cli("migrate", "orion")

    seeded = pooled.cli("seed", "all").stdout
    assert "orion: seeded seeds/development/orion/001_tenants.sql (+3 rows" in seeded
    assert pooled.sql("orion", "SELECT count(*) AS n FROM tenants")[0]["n"] == 3
    assert pooled.sql("marketdata", "SELECT count(*) AS n FROM venues")[0]["n"] == 52  # the fixture's 52 venues

    fleet = tmp_path / "fleet.txt"
    fleet.write_text("".join(f"{name} {pooled.url(name)}\n" for name in DATABASES))
    for name in DATABASES:
        pooled.cli("down", name, "--steps", "2")
    migrated = pooled.cli("migrate-fleet", "--targets", str(fleet))
    assert "3 database(s): 3 ok, 0 failed; 6 migration(s) applied" in migrated.stdout
    report = json.loads(pooled.cli("status", "--targets", str(fleet), "--format", "json", "--check").stdout)
    assert [r["ok"] for r in report["databases"]] == [True, True, True]
    for name in DATABASES:
        assert pooled.applied(name) == migration_ids(name)
