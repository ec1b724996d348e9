"""A failed or interrupted concurrent index build recovers (issue 16, class 2; issue 19's recovery
of concurrent builds): a non-transactional migration whose CREATE [UNIQUE] INDEX CONCURRENTLY
failed (duplicates; lock_timeout behind an old transaction) or whose runner was killed mid-build
leaves an INVALID index; status names it by name and --check fails; the next run drops exactly
that leftover (DROP INDEX CONCURRENTLY, saying so) and builds it again, with or without IF NOT
EXISTS, after a repair too; the same for REINDEX CONCURRENTLY's `_ccnew`. A migration resumes after
the statements that finished while they are unchanged, and refuses when they changed; `down`
refuses while a later migration failed midway; a lock_timeout retry never waits in a transaction."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import asyncpg
import pytest
from migration_files import write_python_migration, write_sql_migration
from support import Databases, migration_ids

PEOPLE = "CREATE TABLE zz_people (id int, email text); INSERT INTO zz_people VALUES (1, 'a@x'), (2, 'a@x'), (3, 'b@x')"


class OpenTransaction:
    """A session holding a transaction open (its own thread and loop) until `close()`: the old
    transaction a concurrent build waits for."""

    def __init__(self, url: str, sql: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._conn = self._run(asyncpg.connect(url))
        self._run(self._conn.execute(f"BEGIN; {sql}"))

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def close(self) -> None:
        self._run(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def index_validity(dbs: Databases, name: str) -> bool | None:
    rows = dbs.sql(
        "orion",
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1",
        name,
    )
    return rows[0]["indisvalid"] if rows else None


def status_report(dbs: Databases) -> dict:
    return json.loads(dbs.cli("status", "orion", "--format", "json").stdout)["databases"][0]


def write_unique_index(project, if_not_exists: bool) -> None:
    write_sql_migration(project, "orion", "905_people", PEOPLE, "DROP TABLE zz_people")
    guard = "IF NOT EXISTS " if if_not_exists else ""
    write_sql_migration(
        project,
        "orion",
        "906_unique_email",
        f"CREATE UNIQUE INDEX CONCURRENTLY {guard}zz_people_email ON zz_people (email);",
        "DROP INDEX CONCURRENTLY zz_people_email;",
        transactional=False,
    )


@pytest.mark.parametrize("if_not_exists", [False, True], ids=["plain", "if_not_exists"])
def test_a_unique_build_that_failed_on_duplicates_is_named_and_rebuilt_once_they_are_fixed(
    project, dbs: Databases, if_not_exists
):
    write_unique_index(project, if_not_exists)
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "UniqueViolationError" in err and "drops INVALID index public.zz_people_email it left" in err, err
    assert index_validity(dbs, "zz_people_email") is False
    report = status_report(dbs)
    assert report["invalid_indexes"] == [
        {
            "index": "public.zz_people_email",
            "table": "public.zz_people",
            "migration": "906_unique_email",
            "building_pid": None,
        }
    ]
    out = dbs.cli("status", "orion", "--check", expect=1).stdout
    assert "[F] 906_unique_email" in out and "it left INVALID index public.zz_people_email" in out

    rerun = dbs.cli("migrate", "orion", expect=1)  # the cause is not fixed: fails again, never "applied"
    assert "dropped INVALID index public.zz_people_email" in rerun.stdout
    assert "906_unique_email" not in dbs.applied("orion") and index_validity(dbs, "zz_people_email") is False

    dbs.sql("orion", "DELETE FROM zz_people WHERE id = 2")
    out = dbs.cli("migrate", "orion").stdout
    assert "dropped INVALID index public.zz_people_email (DROP INDEX CONCURRENTLY)" in out
    assert "applied 906_unique_email" in out and index_validity(dbs, "zz_people_email") is True
    assert dbs.cli("status", "orion", "--check").returncode == 0
    with pytest.raises(asyncpg.UniqueViolationError):
        dbs.sql("orion", "INSERT INTO zz_people VALUES (4, 'b@x')")


def test_a_build_that_hit_lock_timeout_behind_an_old_transaction_recovers_after_repair_too(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_people", PEOPLE, "DROP TABLE zz_people")
    path = write_sql_migration(
        project,
        "orion",
        "906_email",
        "CREATE INDEX CONCURRENTLY zz_people_email ON zz_people (email);",
        "DROP INDEX CONCURRENTLY zz_people_email;",
        transactional=False,
    )
    path.write_text(path.read_text() + '\nLOCK_TIMEOUT = "300ms"\n')
    dbs.cli("migrate", "orion", "--to", "905")
    writer = OpenTransaction(dbs.url("orion"), "INSERT INTO zz_people VALUES (9, 'old@x')")
    try:
        err = dbs.cli("migrate", "orion", expect=1).stderr
    finally:
        writer.close()
    assert "lock_timeout 300ms" in err and index_validity(dbs, "zz_people_email") is False
    out = dbs.cli("repair", "orion").stdout
    assert "cleared the failure of 906_email (it is still not applied); the INVALID index public.zz_people_email" in out
    assert status_report(dbs)["counts"]["invalid_indexes"] == 1
    out = dbs.cli("migrate", "orion").stdout
    assert "dropped INVALID index public.zz_people_email" in out and index_validity(dbs, "zz_people_email") is True
    assert dbs.cli("status", "orion", "--check").returncode == 0


def test_a_runner_killed_mid_build_is_recovered_by_the_next_migrate_with_no_hand_work(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_people", PEOPLE, "DROP TABLE zz_people")
    write_sql_migration(
        project,
        "orion",
        "906_email",
        "CREATE INDEX CONCURRENTLY zz_people_email ON zz_people (email);",
        "DROP INDEX CONCURRENTLY zz_people_email;",
        transactional=False,
    )
    dbs.cli("migrate", "orion", "--to", "905")
    writer = OpenTransaction(dbs.url("orion"), "INSERT INTO zz_people VALUES (9, 'old@x')")
    try:
        runner = dbs.popen("migrate", "orion")
        deadline = time.monotonic() + 30
        while not dbs.sql(
            "orion",
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY zz_people_email%' "
            "AND wait_event_type = 'Lock'",
        ):
            assert time.monotonic() < deadline and runner.poll() is None, "the build never started waiting"
            time.sleep(0.05)
        os.kill(runner.pid, signal.SIGKILL)
        runner.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while dbs.sql("orion", "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'"):
            assert time.monotonic() < deadline, "the killed runner's build went on"
            time.sleep(0.1)
    finally:
        writer.close()
    assert index_validity(dbs, "zz_people_email") is False
    out = dbs.cli("status", "orion").stdout
    assert "[I] 906_email" in out and "it left INVALID index public.zz_people_email" in out
    out = dbs.cli("migrate", "orion").stdout
    assert "dropped INVALID index public.zz_people_email" in out and "applied 906_email" in out
    assert index_validity(dbs, "zz_people_email") is True and dbs.applied("orion")[-1] == "906_email"


def test_reindex_concurrently_leaves_ccnew_which_the_next_run_drops_before_rebuilding(project, dbs: Databases):
    write_sql_migration(
        project,
        "orion",
        "905_people",
        f"{PEOPLE}; CREATE INDEX zz_people_email ON zz_people (email)",
        "DROP TABLE zz_people",
    )
    path = write_sql_migration(
        project, "orion", "906_reindex", "REINDEX INDEX CONCURRENTLY zz_people_email;", NOTHING, transactional=False
    )
    path.write_text(
        path.read_text()
        .replace("from dbmigrate.sql import SQLMigration", "from dbmigrate.sql import NOTHING_TO_UNDO, SQLMigration")
        .replace(repr(NOTHING), "NOTHING_TO_UNDO")
        + '\nLOCK_TIMEOUT = "300ms"\n'
    )
    dbs.cli("migrate", "orion", "--to", "905")
    writer = OpenTransaction(dbs.url("orion"), "INSERT INTO zz_people VALUES (9, 'old@x')")
    try:
        dbs.cli("migrate", "orion", expect=1)
    finally:
        writer.close()
    assert index_validity(dbs, "zz_people_email_ccnew") is False
    assert [i["index"] for i in status_report(dbs)["invalid_indexes"] if i["migration"] == "906_reindex"] == [
        "public.zz_people_email_ccnew"
    ]
    out = dbs.cli("migrate", "orion").stdout
    assert "dropped INVALID index public.zz_people_email_ccnew" in out and "applied 906_reindex" in out
    assert index_validity(dbs, "zz_people_email_ccnew") is None and index_validity(dbs, "zz_people_email") is True


NOTHING = "-- dbmigrate: nothing to undo\n"
TWO_INDEXES = (
    "CREATE INDEX CONCURRENTLY idx_users_a ON users (email);\nCREATE INDEX CONCURRENTLY idx_x ON nowhere (id);"
)


def failed_at_the_second_statement(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    path = write_sql_migration(
        project, "orion", "905_half", TWO_INDEXES, "DROP INDEX CONCURRENTLY idx_users_a;", transactional=False
    )
    dbs.cli("migrate", "orion", expect=1)
    return path


def row_of(dbs: Databases, migration_id: str) -> dict:
    return next(r for r in status_report(dbs)["migrations"] if r["id"] == migration_id)


def test_a_two_statement_migration_resumes_after_the_statement_that_finished_once_fixed(project, dbs: Databases):
    path = failed_at_the_second_statement(project, dbs)
    again = dbs.cli("migrate", "orion", expect=1)  # unchanged: resumes, fails again, keeps its trail
    assert "resuming at statement 2" in again.stdout and "resumes at statement 2" in again.stderr
    row = row_of(dbs, "905_half")
    assert row["state"] == "failed" and row["statements_done"] == 1
    assert row["last_statement"].startswith("line 1: CREATE INDEX CONCURRENTLY idx_users_a")
    path.write_text(path.read_text().replace("idx_x ON nowhere (id)", "idx_x ON users (username)"))
    out = dbs.cli("migrate", "orion").stdout  # statement 1 again would fail: "already exists"
    assert "statement(s) 1..1 of 2 finished in an earlier run and are unchanged; resuming at statement 2" in out
    assert dbs.applied("orion")[-1] == "905_half"
    assert index_validity(dbs, "idx_users_a") is True and index_validity(dbs, "idx_x") is True


def test_a_finished_statement_that_changed_since_is_refused_in_one_line(project, dbs: Databases):
    path = failed_at_the_second_statement(project, dbs)
    before = row_of(dbs, "905_half")
    path.write_text(path.read_text().replace("users (email)", "users (email, username)"))
    result = dbs.cli("migrate", "orion", expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "905_half was not run: statement 1 (line 1: CREATE INDEX CONCURRENTLY idx_users_a" in lines[0]
    assert "finished in an earlier run but its text has changed since" in lines[0] and "db-migrate-repair" in lines[0]
    assert row_of(dbs, "905_half") == before  # nothing ran, the trail is as it was


def test_down_refuses_while_a_later_migration_failed_midway_naming_it(project, dbs: Databases):
    write_sql_migration(project, "orion", "904_table", "CREATE TABLE zz_keep (id int)", "DROP TABLE zz_keep")
    failed_at_the_second_statement(project, dbs)
    result = dbs.cli("down", "orion", expect=1)
    assert "nothing was rolled back: 905_half FAILED midway (statement 1 of 2 finished" in result.stderr
    assert "reverted" not in result.stdout
    assert dbs.applied("orion")[-1] == "904_table" and "zz_keep" in dbs.tables("orion")


@pytest.mark.parametrize("kind", ["sql", "piccolo"])
def test_a_lock_timeout_retry_waits_outside_any_transaction(project, dbs: Databases, kind):
    dbs.cli("migrate", "orion")
    options = '\nLOCK_TIMEOUT = "200ms"\nLOCK_RETRIES = 3\n'
    if kind == "sql":
        path = write_sql_migration(
            project, "orion", "905_col", "ALTER TABLE users ADD zz int", "ALTER TABLE users DROP zz"
        )
    else:
        path = write_python_migration(
            project,
            "orion",
            "905_col",
            """
manager = MigrationManager(migration_id=ID, app_name="orion")

async def step():
    await engine_finder().run_ddl("ALTER TABLE users ADD zz int")

manager.add_raw(step)
manager.add_raw_backwards(lambda: None)
return manager
""",
        )
    path.write_text(path.read_text() + options)
    blocker = OpenTransaction(dbs.url("orion"), "LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    # A state held for over half a second is a wait, not the moment between two statements.
    runner_sessions = (
        "SELECT state, wait_event_type, clock_timestamp() - state_change > interval '500 ms' AS held "
        "FROM pg_stat_activity WHERE application_name LIKE 'dbmigrate migrate%' AND pid <> pg_backend_pid()"
    )
    states = []
    try:
        runner = dbs.popen("migrate", "orion")
        deadline = time.monotonic() + 60
        while not any(r["wait_event_type"] == "Lock" for r in dbs.sql("orion", runner_sessions)):
            assert time.monotonic() < deadline and runner.poll() is None, "the first attempt never waited"
            time.sleep(0.02)
        # Attempts 0.2 s each, then waits of 1 s, 2 s, 4 s: sample through at least one wait, then free the table.
        deadline = time.monotonic() + 2.2
        while time.monotonic() < deadline:
            states += [r["state"] for r in dbs.sql("orion", runner_sessions) if r["held"]]
            time.sleep(0.02)
    finally:
        blocker.close()
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert "retrying in 1 s" in out and "applied 905_col" in out
    assert "idle" in states and "idle in transaction" not in states, sorted(set(states))  # waited, outside
    assert migration_ids("orion")[0] in dbs.applied("orion")
