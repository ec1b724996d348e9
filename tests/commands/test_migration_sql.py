"""`make db-migrate-sql ID=003 [DB=] [DOWN=1]`: a migration's SQL with no database (Django's
sqlmigrate): an SQL migration's statements, Piccolo operations as the DDL they run, raw Python
steps named as such; nothing connects, so it works with every database URL pointing nowhere."""

from __future__ import annotations

import subprocess

from migration_files import write_python_migration, write_sql_migration
from support import Databases

NOWHERE = "postgresql://nobody@127.0.0.1:9/nowhere"  # a port nothing listens on


def offline(dbs: Databases, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    """The CLI with every database URL unreachable: any connection attempt would fail."""
    dbs.extra_env.update({"DATABASE_URL": NOWHERE, "RFQ_DATABASE_URL": NOWHERE, "MARKETDATA_DATABASE_URL": NOWHERE})
    return dbs.cli(*args, expect=expect)


def test_an_sql_migrations_statements_forwards_and_backwards_with_no_database(project, dbs: Databases):
    write_sql_migration(
        project,
        "orion",
        "003_add_phone",
        "ALTER TABLE users ADD COLUMN phone text;\nCREATE TABLE phones (id int)",
        "DROP TABLE phones; ALTER TABLE users DROP COLUMN phone",
    )
    out = offline(dbs, "sql", "003").stdout
    lines = out.splitlines()
    assert lines[0] == (
        "-- orion 003_add_phone (orion/piccolo_migrations/orion_003_add_phone.py), applied in one transaction:"
    )
    assert "ALTER TABLE users ADD COLUMN phone text;" in lines and "CREATE TABLE phones (id int);" in lines
    down = offline(dbs, "sql", "003_add_phone", "orion", "--down").stdout
    assert "rolled back in one transaction:" in down.splitlines()[0]
    assert down.index("DROP TABLE phones;") < down.index("ALTER TABLE users DROP COLUMN phone;")


def test_piccolo_operations_are_rendered_as_the_ddl_they_run_and_raw_steps_say_so(project, dbs: Databases):
    write_python_migration(
        project,
        "orion",
        "003_nickname",
        """
from piccolo.columns import Varchar

manager = MigrationManager(migration_id=ID, app_name="orion")
manager.add_column(
    table_class_name="Tenant", tablename="tenants", column_name="nickname", db_column_name="nickname",
    column_class_name="Varchar", column_class=Varchar, params={"length": 40, "null": True, "default": None},
)
manager.rename_column(
    table_class_name="User", tablename="users", old_column_name="display_name", new_column_name="shown_name",
    old_db_column_name="display_name", new_db_column_name="shown_name",
)

async def backfill():
    await engine_finder().run_ddl("UPDATE tenants SET status = status")

manager.add_raw(backfill)
return manager
""",
    )
    out = offline(dbs, "sql", "003").stdout
    assert "-- raw Python step 'backfill': its SQL is only known when it runs" in out
    assert 'ALTER TABLE "tenants" ADD COLUMN "nickname" VARCHAR(40) DEFAULT null;' in out
    assert 'ALTER TABLE "users" RENAME COLUMN "display_name" TO "shown_name";' in out
    down = offline(dbs, "sql", "003", "--down", expect=1).stderr  # raw forwards steps with no backwards ones
    assert "003_nickname cannot be rolled back: it has raw forwards steps and no raw backwards steps" in down
    # What it renders is what runs: applied for real, the database has exactly those changes.
    dbs.extra_env.clear()
    dbs.cli("migrate", "orion")
    columns = {r["column_name"] for r in dbs.sql("orion", "SELECT column_name FROM information_schema.columns")}
    assert {"nickname", "shown_name"} <= columns and "display_name" not in columns


def test_a_non_transactional_migration_says_each_statement_commits_alone(project, dbs: Databases):
    write_sql_migration(
        project,
        "orion",
        "003_index_email",
        "CREATE INDEX CONCURRENTLY idx_users_email_lower ON users (lower(email))",
        "DROP INDEX CONCURRENTLY idx_users_email_lower",
        transactional=False,
    )
    out = offline(dbs, "sql", "3").stdout
    assert "applied not in a transaction: each statement commits alone:" in out.splitlines()[0]
    assert "CREATE INDEX CONCURRENTLY idx_users_email_lower ON users (lower(email));" in out


def test_the_make_target_takes_id_db_and_down_and_refuses_a_missing_id(project, dbs: Databases):
    write_sql_migration(project, "rfq", "003_desks", "CREATE TABLE desks (id int)", "DROP TABLE desks")
    env = {**dbs.env, "DATABASE_URL": NOWHERE}
    make = ["make", "-s", "db-migrate-sql"]
    out = subprocess.run([*make, "ID=003", "DB=rfq", "DOWN=1"], cwd=project, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == ["DROP TABLE desks;"]
    missing = subprocess.run(make, cwd=project, env=env, capture_output=True, text=True)
    assert missing.returncode != 0
    assert missing.stderr.splitlines()[0] == (
        "error: ID is required: make db-migrate-sql ID=003 (a migration's number or whole ID)"
    )


def test_an_id_naming_no_migration_or_two_is_refused_in_one_line(project, dbs: Databases):
    write_sql_migration(project, "orion", "003_a", "SELECT 1", "SELECT 1")
    write_sql_migration(project, "orion", "003_b", "SELECT 2", "SELECT 2")
    two = offline(dbs, "sql", "003", expect=2).stderr
    assert two == "error: orion: ID=003 names 2 migrations (003_a, 003_b): give the whole ID\n"
    none = offline(dbs, "sql", "042", expect=2).stderr
    assert none.startswith("error: orion: no migration '042'; the migrations are: 001_initial_schema")
