"""Down without the file: a branch's migrations applied, then the branch switched away (their files
gone). At apply the bookkeeping keeps what `down` runs, so `make db-migrate-down` reverts them from
that stored copy; status and migrate name them "applied from another branch" with that fix, not
repair; with no stored copy, down refuses in one line."""

from __future__ import annotations

from pathlib import Path

from hostile_make import make, make_error
from support import PRIVATE_SERVER_PASSWORD, Databases

from dbmigrate.testing.helpers import write_python_migration, write_sql_migration

FOLDER = ("orion", "piccolo_migrations")

# A table, an index and a function whose body is dollar-quoted (with a semicolon inside).
REPORTS_UP = """
CREATE TABLE reports (id bigint PRIMARY KEY, title text NOT NULL, created_at timestamptz DEFAULT now());
CREATE INDEX idx_reports_title ON reports (lower(title));
CREATE FUNCTION report_title(report_id bigint) RETURNS text LANGUAGE plpgsql AS $body$
BEGIN
    RETURN (SELECT title FROM reports WHERE id = report_id); -- a semicolon inside
END;
$body$;
"""
REPORTS_DOWN = """
DO $check$
BEGIN
    IF to_regclass('reports') IS NULL THEN RAISE EXCEPTION 'reports is gone; nothing to undo'; END IF;
END
$check$;
DROP FUNCTION report_title(bigint);
DROP INDEX idx_reports_title;
DROP TABLE reports;
"""

NICKNAME = """
from piccolo.columns import Varchar

manager = MigrationManager(migration_id=ID, app_name="orion")
manager.add_column(
    table_class_name="Tenant", tablename="tenants", column_name="nickname", db_column_name="nickname",
    column_class_name="Varchar", column_class=Varchar, params={"length": 40, "null": True, "default": None},
)
return manager
"""


def write_branch(project: Path) -> list[Path]:
    """The branch's three migrations: SQL (table, index, function), Piccolo (a column), and a
    non-transactional SQL one (a concurrent index, whose down must run outside a transaction)."""
    written = [write_sql_migration(project, "orion", "003_reports", REPORTS_UP, REPORTS_DOWN)]
    written.append(write_python_migration(project, "orion", "004_nickname", NICKNAME))
    written.append(
        write_sql_migration(
            project,
            "orion",
            "005_index_nickname",
            "CREATE INDEX CONCURRENTLY idx_tenants_nickname ON tenants (nickname)",
            "DROP INDEX CONCURRENTLY idx_tenants_nickname",
            transactional=False,
        )
    )
    return written


def switch_away(files: list[Path]) -> None:
    """What `git checkout main` does to the branch's migrations."""
    for path in files:
        path.unlink()


def test_the_branch_switch_story_ends_in_one_down_from_the_stored_copies(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    before = dbs.catalog("orion")
    branch = write_branch(project)
    dbs.cli("migrate", "orion")
    assert {"003_reports", "004_nickname", "005_index_nickname"} <= set(dbs.applied("orion"))
    switch_away(branch)

    status = make(dbs, "db-migrate-status", "DB=orion")
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if "_reports" in line or "_nickname" in line]
    assert len(lines) == 3 and all("applied from another branch" in line for line in lines), status.stdout
    assert "repair" not in status.stdout
    assert "make db-migrate-down DB=orion STEPS=3" in status.stdout

    migrate = make(dbs, "db-migrate", "DB=orion")
    line = make_error(migrate, "applied from another branch", "make db-migrate-down DB=orion STEPS=3")
    assert "repair" not in line

    down = make(dbs, "db-migrate-down", "DB=orion", "STEPS=3")
    assert down.returncode == 0, down.stderr
    for migration_id in ("003_reports", "004_nickname", "005_index_nickname"):
        assert f"{migration_id} from the copy stored when it was applied" in down.stdout, down.stdout
    assert dbs.applied("orion") == ["001_initial_schema", "002_audit_log_append_only"]
    assert dbs.catalog("orion") == before
    assert make(dbs, "db-migrate", "DB=orion").returncode == 0  # main is consistent again


def test_down_refuses_in_one_line_when_no_copy_was_stored(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    branch = [write_sql_migration(project, "orion", "003_reports", REPORTS_UP, REPORTS_DOWN)]
    dbs.cli("migrate", "orion")
    # As an older bookkeeping (before copies were stored) left it.
    dbs.sql("orion", "UPDATE dbmigrate_history SET down_sql = NULL WHERE migration_id = '003_reports'")
    switch_away(branch)
    line = make_error(make(dbs, "db-migrate-down", "DB=orion"), "003_reports", "no copy", "check out")
    assert "Traceback" not in line
    assert "reports" in dbs.tables("orion")  # untouched
    assert "003_reports" in dbs.applied("orion")
    status = make(dbs, "db-migrate-status", "DB=orion").stdout
    assert "applied from another branch" not in status and "MISSING" in status


def test_a_bookkeeping_table_from_before_stored_copies_is_upgraded_and_still_works(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_sql_migration(project, "orion", "003_reports", REPORTS_UP, REPORTS_DOWN)
    dbs.cli("migrate", "orion")
    dbs.sql("orion", "ALTER TABLE dbmigrate_history DROP COLUMN down_sql, DROP COLUMN down_transactional")
    assert "003_reports" in dbs.cli("status", "orion").stdout  # read without the columns
    newer = write_python_migration(project, "orion", "004_nickname", NICKNAME)
    dbs.cli("migrate", "orion")  # upgrades the table, then stores 004's copy
    columns = {
        r["column_name"]
        for r in dbs.sql(
            "orion", "SELECT column_name FROM information_schema.columns WHERE table_name = 'dbmigrate_history'"
        )
    }
    assert {"down_sql", "down_transactional"} <= columns
    switch_away([newer])
    out = dbs.cli("down", "orion").stdout
    assert "004_nickname from the copy stored when it was applied" in out
    assert "nickname" not in {
        r["column_name"]
        for r in dbs.sql("orion", "SELECT column_name FROM information_schema.columns WHERE table_name = 'tenants'")
    }
    out = dbs.cli("down", "orion").stdout  # 003 was applied before the upgrade, and its file is here
    assert "reverted 003_reports" in out and "stored" not in out
    assert "reports" not in dbs.tables("orion")


def test_the_stored_copy_path_never_shows_the_password(tcp_dbs: Databases):
    tcp_dbs.cli("migrate", "orion")
    branch = [write_sql_migration(tcp_dbs.cwd, "orion", "003_reports", REPORTS_UP, REPORTS_DOWN)]
    tcp_dbs.cli("migrate", "orion")
    switch_away(branch)
    outputs = [tcp_dbs.cli("status", "orion"), tcp_dbs.cli("migrate", "orion", expect=1)]
    outputs.append(tcp_dbs.cli("down", "orion", "--dry-run"))
    outputs.append(tcp_dbs.cli("down", "orion"))
    text = "".join(o.stdout + o.stderr for o in outputs)
    assert "from the copy stored when it was applied" in text
    assert PRIVATE_SERVER_PASSWORD not in text and "s3cret" not in text


STAGED = """
from dbmigrate.batched import StagedMigration

ID = "003_scores"
VERSION = "1.38.0"
DESCRIPTION = ""


async def forwards():
    manager = StagedMigration(migration_id=ID, app_name="orion", description=DESCRIPTION)
    manager.sql("CREATE TABLE scores (id bigint PRIMARY KEY, points int)", "DROP TABLE scores")
    manager.sql("INSERT INTO scores SELECT g, 0 FROM generate_series(1, 50) g", "DELETE FROM scores")
    manager.batched_update(table="scores", set="points = id * 2", backwards="UPDATE scores SET points = 0")
    return manager
"""


def test_a_staged_migration_is_reverted_from_its_stored_copy_and_its_progress_forgotten(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    before = dbs.catalog("orion")
    path = project / "orion" / "piccolo_migrations" / "orion_003_scores.py"
    path.write_text(STAGED)
    dbs.cli("migrate", "orion")
    assert (
        dbs.sql("orion", "SELECT count(*) AS n FROM dbmigrate_batches WHERE migration_id = '003_scores'")[0]["n"] == 1
    )
    switch_away([path])
    out = dbs.cli("down", "orion").stdout
    assert "reverting 003_scores from the copy stored when it was applied" in out
    assert dbs.catalog("orion") == before
    assert (
        dbs.sql("orion", "SELECT count(*) AS n FROM dbmigrate_batches WHERE migration_id = '003_scores'")[0]["n"] == 0
    )
    # Its file back (the branch checked out again): it applies again from the start, not skipped as done.
    path.write_text(STAGED)
    dbs.cli("migrate", "orion")
    assert dbs.sql("orion", "SELECT sum(points) AS s FROM scores")[0]["s"] == sum(i * 2 for i in range(1, 51))


def test_a_piccolo_migration_with_raw_python_steps_keeps_no_copy_and_down_refuses(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    body = """
manager = MigrationManager(migration_id=ID, app_name="orion")

async def up():
    await engine_finder().run_ddl("CREATE TABLE raw_made (id int)")

async def down():
    await engine_finder().run_ddl("DROP TABLE raw_made")

manager.add_raw(up)
manager.add_raw_backwards(down)
return manager
"""
    path = write_python_migration(project, "orion", "003_raw", body)
    dbs.cli("migrate", "orion")
    assert (
        dbs.sql("orion", "SELECT down_sql FROM dbmigrate_history WHERE migration_id = '003_raw'")[0]["down_sql"] is None
    )
    switch_away([path])
    assert "applied from another branch" not in dbs.cli("status", "orion").stdout
    err = dbs.cli("down", "orion", expect=1).stderr
    assert err.count("\n") == 1 and "003_raw" in err and "no copy of its down was stored" in err
    assert "raw_made" in dbs.tables("orion")
