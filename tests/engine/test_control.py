"""Control: targets, dry runs, non-transactional migrations, timeouts and production guards."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from migration_files import write_python_migration, write_sql_migration
from support import Databases, migration_ids


def three_tables(project):
    for number, table in (("905", "alpha"), ("906", "beta"), ("907", "gamma")):
        write_sql_migration(
            project, "orion", f"{number}_{table}", f"CREATE TABLE {table} (id int)", f"DROP TABLE {table}"
        )


def test_migrate_to_a_version_stops_there(project, dbs: Databases):
    three_tables(project)
    dbs.cli("migrate", "orion", "--to", "906")
    assert dbs.applied("orion")[-2:] == ["905_alpha", "906_beta"]
    assert "gamma" not in dbs.tables("orion")
    assert "nothing to migrate" in dbs.cli("migrate", "orion", "--to", "905_alpha").stdout


def test_down_by_steps_and_down_to_a_version(project, dbs: Databases):
    three_tables(project)
    dbs.cli("migrate", "orion")
    out = dbs.cli("down", "orion", "--steps", "2").stdout
    assert out.index("reverted 907_gamma") < out.index("reverted 906_beta")
    assert dbs.applied("orion")[-1] == "905_alpha"
    dbs.cli("migrate", "orion")
    dbs.cli("down", "orion", "--to", "905")
    assert dbs.applied("orion") == migration_ids("orion") + ["905_alpha"]
    err = dbs.cli("down", "orion", "--steps", "1", "--to", "905", expect=2).stderr
    assert "STEPS or TO, not both" in err


def test_dry_run_prints_the_sql_including_raw_steps_and_changes_nothing(project, dbs: Databases):
    write_python_migration(
        project,
        "orion",
        "905_python_raw",
        """
manager = MigrationManager(migration_id=ID, app_name="orion")

async def backfill():
    await engine_finder().run_ddl("UPDATE users SET status = 'active'")

manager.add_raw(backfill)
manager.add_raw_backwards(backfill)
return manager
""",
    )
    out = dbs.cli("migrate", "orion", "--dry-run").stdout
    assert "-- orion: 001_initial_schema (forwards)" in out
    assert "CREATE TABLE tenants" in out and "idx_outbox_unpublished" in out  # SQL steps, shown
    assert "-- raw Python step 'backfill'" in out  # Piccolo's preview skips these: we say so
    assert dbs.applied("orion") == [] and dbs.tables("orion") == set()
    dbs.cli("migrate", "orion")
    out = dbs.cli("down", "orion", "--dry-run", "--steps", "2").stdout
    assert "-- orion: 905_python_raw (backwards)" in out and "-- raw Python step 'backfill'" in out
    assert "905_python_raw" in dbs.applied("orion")


def test_a_failed_non_transactional_migration_is_shown_with_what_to_do(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    dbs.sql("orion", "CREATE TABLE codes (code text)")
    dbs.sql("orion", "INSERT INTO codes VALUES ('a'), ('a')")
    write_sql_migration(
        project,
        "orion",
        "905_unique_codes",
        "CREATE UNIQUE INDEX CONCURRENTLY idx_codes_code ON codes (code)",
        "DROP INDEX CONCURRENTLY idx_codes_code",
        transactional=False,
    )
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "905_unique_codes failed midway and is NOT transactional" in err
    assert "the next run drops INVALID index public.idx_codes_code it left" in err
    out = dbs.cli("status", "orion").stdout
    assert "[F] 905_unique_codes" in out and "FAILED midway" in out
    dbs.cli("status", "orion", "--check", expect=1)
    # The operator fixes the data; the rerun drops the INVALID index, succeeds and clears the failure.
    dbs.sql("orion", "DELETE FROM codes")
    assert "dropped INVALID index public.idx_codes_code" in dbs.cli("migrate", "orion").stdout
    assert "[x] 905_unique_codes" in dbs.cli("status", "orion").stdout
    dbs.cli("status", "orion", "--check")
    dbs.cli("down", "orion")


def test_a_migration_blocked_by_a_busy_table_fails_fast_after_its_retries(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    path = write_sql_migration(
        project, "orion", "905_touch_users", "ALTER TABLE users ADD COLUMN x int", "ALTER TABLE users DROP COLUMN x"
    )
    path.write_text(path.read_text() + '\nLOCK_TIMEOUT = "200ms"\nLOCK_RETRIES = 1\n')

    async def with_users_locked():
        holder = await asyncpg.connect(dbs.url("orion"))
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE users IN ACCESS SHARE MODE")
                started = time.monotonic()
                result = await asyncio.to_thread(dbs.cli, "migrate", "orion", expect=1)
                return result, time.monotonic() - started
        finally:
            await holder.close()

    result, elapsed = asyncio.run(with_users_locked())
    assert "stayed locked past lock_timeout 200ms (2 attempt(s))" in result.stderr
    assert "retrying in 1 s" in result.stdout
    assert elapsed < 20
    assert "905_touch_users" not in dbs.applied("orion")
    dbs.cli("migrate", "orion")  # the table is free again


def test_statement_timeout_stops_a_runaway_statement(project, dbs: Databases):
    path = write_sql_migration(project, "orion", "905_slow", "SELECT pg_sleep(30)", "SELECT 1")
    path.write_text(path.read_text() + '\nSTATEMENT_TIMEOUT = "300ms"\n')
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "statement_timeout 300ms reached" in err and "rolled back" in err


def test_production_refuses_destructive_commands_unless_the_database_is_named(dbs: Databases):
    dbs.cli("migrate", "all")
    dbs.extra_env["ORION_ENV"] = "production"
    for args in (("down", "orion"), ("drop-databases",), ("repair", "rfq"), ("baseline", "orion", "--to", "001")):
        err = dbs.cli(*args, expect=1).stderr
        assert "with ORION_ENV=production: confirm by naming the database(s), e.g. CONFIRM=" in err
    err = dbs.cli("down", "orion", "--confirm", "rfq", expect=1).stderr
    assert "refusing to down orion" in err
    dbs.cli("down", "orion", "--confirm", "orion")
    dbs.cli("migrate", "orion")  # migrate is never guarded
    assert dbs.applied("orion") == migration_ids("orion")


def test_piccolo_operations_run_on_the_target_whatever_piccolo_conf_py_says(project, dbs: Databases):
    # A service's own piccolo_conf.py, its DB another database: the framework's work never goes there.
    (project / "piccolo_conf.py").write_text(
        "from piccolo.engine.postgres import PostgresEngine\n\n"
        f"DB = PostgresEngine(config={{'dsn': {dbs.url('rfq')!r}}}, extensions=())\n"
    )
    write_python_migration(
        project,
        "orion",
        "905_routed",
        """
from piccolo.columns import Varchar

manager = MigrationManager(migration_id=ID, app_name="orion")
manager.add_column(
    table_class_name="Tenant", tablename="tenants", column_name="nickname", db_column_name="nickname",
    column_class_name="Varchar", column_class=Varchar, params={"length": 40, "null": True, "default": None},
)

async def routed():
    await engine_finder().run_ddl("CREATE TABLE routed (id int)")

async def unrouted():
    await engine_finder().run_ddl("DROP TABLE routed")

manager.add_raw(routed)
manager.add_raw_backwards(unrouted)
return manager
""",
    )
    dbs.cli("migrate", "orion")
    assert "routed" in dbs.tables("orion") and dbs.tables("rfq") == set()
    assert dbs.sql("orion", "SELECT 1 FROM information_schema.columns WHERE column_name = 'nickname'")
    dbs.cli("down", "orion")
    assert "routed" not in dbs.tables("orion")
