"""Nothing pretended: an unfilled migration never runs, an empty rollback is never "reverted", and a
non-transactional migration that stops midway says which statement ran last (issue 9, items 1-4, 8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from migration_files import write_sql_migration
from support import Databases

INDEXES = "\n".join(
    [
        "CREATE INDEX CONCURRENTLY idx_users_a ON users (email);",
        "CREATE INDEX CONCURRENTLY idx_users_b ON users (username);",
    ]
)
SLOW_SECOND = "CREATE INDEX CONCURRENTLY idx_users_a ON users (email);\nSELECT pg_sleep(60);"


def status_of(dbs: Databases, migration_id: str) -> dict:
    report = json.loads(dbs.cli("status", "orion", "--format", "json").stdout)
    return next(row for row in report["databases"][0]["migrations"] if row["id"] == migration_id)


def indexes(dbs: Databases) -> set[str]:
    return {r["indexname"] for r in dbs.sql("orion", "SELECT indexname FROM pg_indexes WHERE tablename = 'users'")}


def test_an_unfilled_skeleton_is_refused_by_name_and_stays_pending(project, dbs: Databases):
    dbs.cli("create", "add_limits", "orion")
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "add_limits" in err and "orion_" in err and "forwards SQL is empty" in err
    assert dbs.applied("orion") == []  # not even the migrations before it: nothing ran
    created = next(project.glob("orion/piccolo_migrations/orion_*_add_limits.py"))
    text = created.read_text()
    created.write_text(
        text.replace('FORWARDS_SQL = """\n', 'FORWARDS_SQL = """\nALTER TABLE users ADD limits int;\n').replace(
            'BACKWARDS_SQL = """\n', 'BACKWARDS_SQL = """\nALTER TABLE users DROP limits;\n'
        )
    )
    dbs.cli("migrate", "orion")  # filled in after the refusal: applies, and is not "modified"
    dbs.cli("status", "orion", "--check")  # exits 0 (dbs.cli fails the test otherwise)


def test_down_refuses_an_empty_backwards_sql_instead_of_pretending(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_probe", "CREATE TABLE zz_probe (id int)", "-- to do\n")
    dbs.cli("migrate", "orion")
    err = dbs.cli("down", "orion", expect=1).stderr
    assert "905_probe cannot be rolled back" in err and "backwards SQL is empty" in err and "reverted" not in err
    assert "zz_probe" in dbs.tables("orion") and dbs.applied("orion")[-1] == "905_probe"
    assert "up to date" in dbs.cli("migrate", "orion").stdout  # no DuplicateTable on the next migrate


def test_nothing_to_undo_is_an_explicit_visible_choice(project, dbs: Databases):
    path = write_sql_migration(project, "orion", "905_data_fix", "UPDATE users SET status = 'active'", "")
    path.write_text(
        path.read_text()
        .replace("from dbmigrate.sql import SQLMigration", "from dbmigrate.sql import NOTHING_TO_UNDO, SQLMigration")
        .replace("backwards=''", "backwards=NOTHING_TO_UNDO")
    )
    dbs.cli("migrate", "orion")
    assert "reverted 905_data_fix" in dbs.cli("down", "orion").stdout


def test_a_transactional_migration_with_concurrent_index_is_refused_before_anything_runs(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_alpha", "CREATE TABLE alpha (id int)", "DROP TABLE alpha")
    write_sql_migration(
        project, "orion", "906_index", "CREATE INDEX CONCURRENTLY idx_alpha ON alpha (id)", "DROP INDEX idx_alpha"
    )
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "CREATE INDEX CONCURRENTLY (orion_906_index.py line 12) cannot run inside a transaction" in err
    assert "TRANSACTION=0" in err
    assert dbs.applied("orion") == [] and "alpha" not in dbs.tables("orion")


def test_a_syntax_error_names_file_and_line_before_anything_runs(project, dbs: Databases):
    path = project / "orion" / "piccolo_migrations" / "orion_905_bad_sql.py"
    path.write_text(
        "from dbmigrate.sql import SQLMigration\n\n"
        'ID = "905_bad_sql"\n\n'
        'FORWARDS_SQL = """\nCREATE TABLE ok (id int);\n\nCREATE TABL broken (id int);\n"""\n\n\n'
        "async def forwards():\n"
        '    manager = SQLMigration(migration_id=ID, app_name="orion")\n'
        '    return manager.sql(FORWARDS_SQL, "DROP TABLE ok")\n'
    )
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "905_bad_sql" in err and "does not parse (orion_905_bad_sql.py line 8)" in err and "TABL" in err
    assert dbs.applied("orion") == []


def test_sql_in_sibling_files_runs_and_its_checksum_covers_them(project, dbs: Databases):
    folder = project / "orion" / "piccolo_migrations"
    (folder / "orion_905_dollar.py").write_text(
        "from dbmigrate.sql import SQLMigration\n\n"
        'ID = "905_dollar"\n\n\n'
        "async def forwards():\n"
        '    return SQLMigration(migration_id=ID, app_name="orion").sql_files(__file__)\n'
    )
    (folder / "orion_905_dollar.up.sql").write_text(
        "-- a function whose body holds semicolons, and a DO block\n"
        "CREATE FUNCTION zz_f() RETURNS int AS $$ BEGIN PERFORM 1; RETURN 2; END; $$ LANGUAGE plpgsql;\n"
        "DO $body$ BEGIN CREATE TABLE zz_t (note text DEFAULT ';'); END $body$;\n"
    )
    (folder / "orion_905_dollar.down.sql").write_text("DROP TABLE zz_t;\nDROP FUNCTION zz_f();\n")
    dbs.cli("migrate", "orion")
    assert dbs.sql("orion", "SELECT zz_f() AS v")[0]["v"] == 2
    (folder / "orion_905_dollar.down.sql").write_text("DROP TABLE zz_t;\n")
    assert "905_dollar was modified" in dbs.cli("migrate", "orion", expect=1).stderr


def test_a_non_transactional_migration_runs_two_concurrent_indexes_in_one_step(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_sql_migration(
        project,
        "orion",
        "905_indexes",
        INDEXES,
        "DROP INDEX CONCURRENTLY idx_users_b;\nDROP INDEX CONCURRENTLY idx_users_a;",
        transactional=False,
    )
    dbs.cli("migrate", "orion")
    assert {"idx_users_a", "idx_users_b"} <= indexes(dbs)
    dbs.cli("down", "orion")
    assert not {"idx_users_a", "idx_users_b"} & indexes(dbs)


def test_a_failing_non_transactional_statement_is_named_with_what_finished(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_sql_migration(
        project,
        "orion",
        "905_half",
        "CREATE INDEX CONCURRENTLY idx_users_a ON users (email);\nCREATE INDEX CONCURRENTLY idx_x ON nowhere (id);",
        "DROP INDEX CONCURRENTLY idx_users_a;",
        transactional=False,
    )
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "statement 1 of 2 finished (line 1: CREATE INDEX CONCURRENTLY idx_users_a" in err
    row = status_of(dbs, "905_half")
    assert row["state"] == "failed" and row["statements_done"] == 1 and row["statements_total"] == 2
    assert "UndefinedTableError" in row["error"]
    assert "[F] 905_half" in dbs.cli("status", "orion", "--check", expect=1).stdout


def _start_slow_non_transactional(project, dbs: Databases) -> subprocess.Popen:
    dbs.cli("migrate", "orion")
    write_sql_migration(
        project, "orion", "905_slow", SLOW_SECOND, "DROP INDEX CONCURRENTLY idx_users_a;", transactional=False
    )
    runner = dbs.popen("migrate", "orion")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if dbs.sql(  # this test's database only: other tests may sleep as well
            "orion",
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND datname = current_database()",
        ):
            return runner
        time.sleep(0.1)
    runner.kill()
    raise AssertionError("the second statement never started")


def _assert_incomplete_after_first_statement(dbs: Databases) -> None:
    row = status_of(dbs, "905_slow")
    assert row["state"] == "incomplete" and row["statements_done"] == 1 and row["statements_total"] == 2
    assert row["last_statement"].startswith("line 1: CREATE INDEX CONCURRENTLY idx_users_a")
    out = dbs.cli("status", "orion", "--check", expect=1).stdout
    assert "[I] 905_slow" in out and "INCOMPLETE" in out and "statement 1 of 2 finished" in out
    assert "idx_users_a" in indexes(dbs)


def test_a_non_transactional_migration_cut_off_by_a_terminated_connection_shows_incomplete(project, dbs: Databases):
    runner = _start_slow_non_transactional(project, dbs)
    dbs.sql("orion", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 1 and "Traceback" not in err and "905_slow" in err
    _assert_incomplete_after_first_statement(dbs)


def test_a_non_transactional_migration_whose_runner_is_killed_shows_incomplete(project, dbs: Databases):
    runner = _start_slow_non_transactional(project, dbs)
    os.kill(runner.pid, signal.SIGKILL)
    runner.communicate(timeout=30)
    _assert_incomplete_after_first_statement(dbs)
    assert "905_slow" not in dbs.applied("orion")


def test_a_migration_name_over_60_characters_is_refused_saying_so(project, dbs: Databases):
    err = dbs.cli("create", "a" * 61, "orion", expect=2).stderr
    assert "61 characters long; the most is 60" in err and "Traceback" not in err
    assert not list((project / "orion" / "piccolo_migrations").glob("*aaa*"))  # nothing written
