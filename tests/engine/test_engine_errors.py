"""The engine's errors are one line that names the database and the fix: roles without CREATE,
read-only databases, terminated connections, files without an ID; and what it prints matches what
it records (issue 12, the engine's items)."""

from __future__ import annotations

import re
import time

from migration_files import write_sql_migration
from support import Databases, migration_ids

from dbmigrate.core.urls import database_name
from dbmigrate.testing.helpers import with_connection


def one_line(result) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr and "unexpected" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_role_that_may_not_create_the_bookkeeping_tables_is_told_how_to_fix_it(dbs: Databases):
    role = f"weak_{dbs.prefix}"
    dbs.sql("orion", f"CREATE ROLE {role} LOGIN")
    dbs.sql("orion", "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    dbs.sql("orion", f"GRANT USAGE ON SCHEMA public TO {role}")
    try:
        dbs.extra_env["DATABASE_URL"] = dbs.url("orion").replace("postgres@", f"{role}@", 1)
        line = one_line(dbs.cli("migrate", "orion", expect=1))
        assert "orion: the role may not create or write the bookkeeping tables" in line
        assert "GRANT CREATE ON SCHEMA public" in line
    finally:
        dbs.sql("orion", f"DROP OWNED BY {role}")
        dbs.sql("orion", f"DROP ROLE {role}")
    assert dbs.tables("orion") == set()


def test_a_read_only_database_is_named_for_migrate_and_for_down(dbs: Databases):
    dbs.cli("migrate", "rfq", "--to", "001")  # 002 pending, 001 to roll back
    name = database_name(dbs.url("rfq"))
    dbs.sql("rfq", f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    for command in (["migrate", "rfq"], ["down", "rfq"]):
        line = one_line(dbs.cli(*command, expect=1))
        assert "rfq: the database is read-only" in line and "replica" in line, line

    async def writable_again(conn):
        await conn.execute("SET default_transaction_read_only = off")
        await conn.execute(f'ALTER DATABASE "{name}" RESET ALL')

    with_connection(dbs.url("rfq"), writable_again)
    assert dbs.applied("rfq") == migration_ids("rfq")[:1]
    assert "up to date" in dbs.cli("migrate", "rfq", "--to", "001").stdout  # reading alone still works


def test_a_terminated_transactional_migration_shows_the_servers_reason(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_sql_migration(
        project, "orion", "905_slow", "CREATE TABLE slow (id int); SELECT pg_sleep(60)", "DROP TABLE slow"
    )
    runner = dbs.popen("migrate", "orion")
    deadline = time.monotonic() + 30
    while not dbs.sql(
        "orion", "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%CREATE TABLE slow%' AND pid <> pg_backend_pid()"
    ):
        assert time.monotonic() < deadline, "the migration never started"
        time.sleep(0.1)
    dbs.sql(
        "orion",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE '%CREATE TABLE slow%' AND pid <> pg_backend_pid()",
    )
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 1 and "Traceback" not in err
    assert "Transaction.rollback" not in err and "terminating connection" in err and "did not commit" in err
    assert "slow" not in dbs.tables("orion") and "905_slow" not in dbs.applied("orion")


def test_a_file_without_an_id_line_is_told_the_id_its_name_implies(project, dbs: Databases):
    (project / "orion" / "piccolo_migrations" / "orion_003_bad_sql.py").write_text("# no ID here\n")
    line = one_line(dbs.cli("status", "orion", expect=1))
    assert 'add ID = "003_bad_sql"' in line


def test_create_auto_prints_one_line_and_applied_duration_is_the_one_recorded(project, dbs: Databases):
    tables = project / "rfq" / "tables.py"
    tables.write_text(
        tables.read_text() + '\n\nclass Desk(Table, tablename="desks"):\n    name = Varchar(length=100)\n'
    )
    out = dbs.cli("create", "add_desks", "rfq", "--auto").stdout
    assert out.strip().splitlines() == [
        f"rfq: created rfq/piccolo_migrations/rfq_{len(migration_ids('rfq')) + 1:03d}_add_desks.py"
    ]
    printed = dict(re.findall(r"applied (\S+) \((\d+) ms\)", dbs.cli("migrate", "rfq").stdout))
    recorded = {r["migration_id"]: str(r["duration_ms"]) for r in dbs.sql("rfq", "SELECT * FROM dbmigrate_history")}
    assert printed == recorded
