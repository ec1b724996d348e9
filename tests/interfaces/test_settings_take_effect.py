"""Each setting changes what the commands do: a test fails if the setting is ignored (the default
would behave otherwise). ORION_POOLER and PgBouncer: tests/server/test_pgbouncer.py; PARALLEL:
tests/commands/test_fleet.py."""

from __future__ import annotations

import time

from migration_files import write_sql_migration
from support import Databases, hold_table_lock, migration_ids
from tcp_servers import silent_server

from dbmigrate.core.config import DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_LOCK_RETRIES


def test_orion_connect_timeout_bounds_the_wait_for_a_server_that_never_answers(dbs: Databases):
    with silent_server() as server:
        dbs.extra_env.update(
            DATABASE_URL=f"postgresql://orion:pw@127.0.0.1:{server.port}/orion",
            RFQ_DATABASE_URL="",
            MARKETDATA_DATABASE_URL="",
            ORION_CONNECT_TIMEOUT="1",
        )
        result = dbs.cli("migrate", "orion", expect=1, timeout=60)
        assert result.stderr.strip() == (
            f"error: no answer from PostgreSQL at 127.0.0.1:{server.port}/orion within 1 s: "
            "check the host and that the server is up"
        )
        deadline = time.monotonic() + 5
        while not server.held_seconds and time.monotonic() < deadline:
            time.sleep(0.05)
    # Each attempt (asyncpg tries with TLS, then without) gave up after about the second it was
    # given, not the default ten.
    assert server.held_seconds
    assert all(0.8 <= held < DEFAULT_CONNECT_TIMEOUT_SECONDS - 2 for held in server.held_seconds), server.held_seconds


def test_orion_statement_timeout_cancels_a_migration_statement_and_nothing_of_it_stays(project, dbs: Databases):
    slow = f"{len(migration_ids('orion')) + 1:03d}_slow"
    write_sql_migration(
        project, "orion", slow, "CREATE TABLE slow_t (id int); SELECT pg_sleep(20)", "DROP TABLE slow_t"
    )
    dbs.extra_env["ORION_STATEMENT_TIMEOUT"] = "300ms"  # the default, 30min, would let it finish
    result = dbs.cli("migrate", "orion", expect=1, timeout=60)
    assert f"orion: applying {slow} failed and was rolled back" in result.stderr
    assert "statement_timeout 300ms reached" in result.stderr
    assert dbs.applied("orion") == migration_ids("orion")
    assert "slow_t" not in dbs.tables("orion")


def test_a_migrations_own_statement_timeout_wins_over_orion_statement_timeout(project, dbs: Databases):
    slow = f"{len(migration_ids('orion')) + 1:03d}_slow"
    path = write_sql_migration(project, "orion", slow, "SELECT pg_sleep(1)", "SELECT 1")
    path.write_text(path.read_text() + '\nSTATEMENT_TIMEOUT = "20s"\n')
    dbs.extra_env["ORION_STATEMENT_TIMEOUT"] = "200ms"
    assert f"orion: applied {slow}" in dbs.cli("migrate", "orion").stdout


def test_orion_lock_retries_is_how_often_a_migration_retries_a_locked_table(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    blocked = f"{len(migration_ids('orion')) + 1:03d}_blocked"
    write_sql_migration(project, "orion", blocked, "ALTER TABLE users ADD COLUMN x int", "ALTER TABLE users DROP x")
    holder = hold_table_lock(dbs, "users")
    try:
        dbs.extra_env.update(ORION_LOCK_TIMEOUT="100ms", ORION_LOCK_RETRIES="0")
        none = dbs.cli("migrate", "orion", expect=1)
        assert "stayed locked past lock_timeout 100ms (1 attempt(s))" in none.stderr
        assert "retrying" not in none.stdout
        dbs.extra_env["ORION_LOCK_RETRIES"] = "1"  # the default is 3
        assert DEFAULT_LOCK_RETRIES != 1
        one = dbs.cli("migrate", "orion", expect=1)
        assert "stayed locked past lock_timeout 100ms (2 attempt(s))" in one.stderr
        assert one.stdout.count(f"orion: {blocked} hit lock_timeout on a busy table; retrying in") == 1
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert dbs.applied("orion") == migration_ids("orion")


def test_orion_lock_timeout_is_how_long_a_migration_waits_for_a_locked_table(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    blocked = f"{len(migration_ids('orion')) + 1:03d}_blocked"
    write_sql_migration(project, "orion", blocked, "ALTER TABLE users ADD COLUMN x int", "ALTER TABLE users DROP x")
    holder = hold_table_lock(dbs, "users")
    try:
        dbs.extra_env.update(ORION_LOCK_TIMEOUT="250ms", ORION_LOCK_RETRIES="0")
        result = dbs.cli("migrate", "orion", expect=1)
        assert "stayed locked past lock_timeout 250ms (1 attempt(s))" in result.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)
