"""Batched data migrations (StagedMigration.batched_update): each batch its own short transaction,
resumed where a killed run stopped, every row done exactly once, the workload never blocked for
more than 100 ms, progress in status, pause and resume, and a later migration's check that a
backfill has finished."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import jsonschema
import pytest
from support import Databases, with_connection
from workload import Workload

from dbmigrate.commands.status import SCHEMA_PATH
from dbmigrate.engine.batches import MAX_BATCH, MIN_BATCH, next_batch_size
from dbmigrate.engine.staged import escalating_lock_timeouts

ROWS = 200_000

STAGED = """
from dbmigrate.batched import NOTHING_TO_UNDO, StagedMigration, require_finished

ID = "{migration_id}"
VERSION = "1.38.0"
DESCRIPTION = "test staged migration"
{extra}

async def forwards():
    manager = StagedMigration(migration_id=ID, app_name="orion", description=DESCRIPTION)
{body}
    return manager
"""


def write_staged(project: Path, migration_id: str, body: str, extra: str = "") -> Path:
    path = project / "orion" / "piccolo_migrations" / f"orion_{migration_id}.py"
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    path.write_text(STAGED.format(migration_id=migration_id, body=indented, extra=extra))
    return path


def counter_table(dbs: Databases, rows: int = ROWS) -> None:
    """Table counted(id bigint primary key, n int, payload int) with `rows` rows, n = 0."""
    execute(
        dbs,
        "CREATE TABLE counted (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, payload int NOT NULL DEFAULT 0); "
        f"INSERT INTO counted (id) SELECT g FROM generate_series(1, {rows}) g; ANALYZE counted",
    )


def execute(dbs: Databases, script: str) -> None:
    with_connection(dbs.url("orion"), lambda conn: conn.execute(script))


def progress_row(dbs: Databases, migration_id: str) -> dict | None:
    if not dbs.sql("orion", "SELECT to_regclass('dbmigrate_batches') IS NOT NULL AS present")[0]["present"]:
        return None
    rows = dbs.sql("orion", "SELECT * FROM dbmigrate_batches WHERE migration_id = $1", migration_id)
    return dict(rows[0]) if rows else None


def kill_when(dbs: Databases, migration_id: str, rows_done: int) -> int:
    """Start migrate, SIGKILL it once `rows_done` rows are committed; return the rows done then."""
    runner = dbs.popen("migrate", "orion")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        row = progress_row(dbs, migration_id)
        if row and row["rows_done"] >= rows_done:
            runner.send_signal(signal.SIGKILL)
            runner.wait(timeout=30)
            return row["rows_done"]
        assert runner.poll() is None, f"migrate ended before it was killed: {runner.communicate()}"
        time.sleep(0.01)
    runner.kill()
    raise AssertionError("the backfill never got that far")


CLIENTS = 4  # the workload's connections; each writes only its own rows (id % CLIENTS), so the only
# lock a write can wait for is the backfill's


def own_row(client) -> int:
    return client.rng.randrange(client.index + 1, ROWS, CLIENTS)


async def read_one(conn, client) -> None:
    await conn.fetchval("SELECT payload FROM counted WHERE id = $1", own_row(client))


async def write_one(conn, client) -> None:
    await conn.execute("UPDATE counted SET payload = payload + 1 WHERE id = $1", own_row(client))


def test_next_batch_size_aims_at_the_target_time_within_half_and_double_of_the_last():
    assert next_batch_size(1000, took=0.1, target=0.05) == 500  # twice too slow: halve
    assert next_batch_size(1000, took=0.04, target=0.05) == 1250  # a little fast: grow in proportion
    assert next_batch_size(1000, took=0.001, target=0.05) == 2000  # far too fast: at most double
    assert next_batch_size(1000, took=5.0, target=0.05) == 500  # far too slow: at least half
    assert next_batch_size(MAX_BATCH, took=0.001, target=0.05) == MAX_BATCH
    assert next_batch_size(MIN_BATCH, took=9.0, target=0.05) == MIN_BATCH


def test_an_sql_stage_waits_for_its_lock_briefly_first_and_longer_on_each_retry_up_to_the_configured_timeout():
    assert escalating_lock_timeouts("5s", retries=2) == [
        *("50ms", "100ms", "200ms", "400ms", "800ms", "1600ms", "3200ms"),
        *("5s", "5s", "5s"),
    ]
    assert escalating_lock_timeouts("30ms", retries=1) == ["30ms", "30ms"]  # never longer than configured
    assert escalating_lock_timeouts("0", retries=0)[-1] == "0"  # no limit, once the short waits failed


@pytest.mark.timing
def test_a_backfill_killed_twice_resumes_and_updates_every_row_exactly_once_without_blocking_the_workload(
    project, dbs: Databases
):
    dbs.cli("migrate", "orion")
    counter_table(dbs)
    write_staged(
        project, "003_count_rows", 'manager.batched_update(table="counted", set="n = n + 1", backwards=NOTHING_TO_UNDO)'
    )
    with Workload(dbs.url("orion"), [read_one, write_one], clients=CLIENTS) as workload:
        first = kill_when(dbs, "003_count_rows", ROWS // 5)
        status = dbs.cli("status", "orion").stdout
        second = kill_when(dbs, "003_count_rows", first + ROWS // 4)
        finished = dbs.cli("migrate", "orion")
    result = workload.result
    print(f"workload during the backfill: {result.summary()}")
    assert "applied 003_count_rows" in finished.stdout
    assert first < second < ROWS
    assert f"of {ROWS:,} rows" in status and "rows/s" in status and "ETA" in status
    counts = dbs.sql("orion", "SELECT n, count(*) AS rows FROM counted GROUP BY n")
    assert [(r["n"], r["rows"]) for r in counts] == [(1, ROWS)]  # every row exactly once
    assert result.queries > 100 and not result.errors, result.errors[:3]
    assert not result.blocked, f"{len(result.blocked)} workload queries waited more than 100 ms: {result.blocked[:2]}"
    row = progress_row(dbs, "003_count_rows")
    assert row["state"] == "done" and row["rows_done"] == ROWS and row["rows_changed"] == ROWS


def test_status_json_gives_a_staged_migrations_progress_in_the_documented_shape(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    counter_table(dbs, 50_000)
    write_staged(
        project, "003_count_rows", 'manager.batched_update(table="counted", set="n = n + 1", backwards=NOTHING_TO_UNDO)'
    )
    dbs.cli("pause", "003", "orion")
    before = json.loads(dbs.cli("status", "orion", "--format", "json").stdout)
    jsonschema.validate(before, json.loads(SCHEMA_PATH.read_text()))
    (row,) = [m for m in before["databases"][0]["migrations"] if m["id"] == "003_count_rows"]
    assert row["state"] == "pending" and row["phase"] == "pre"
    assert row["batches"]["paused"] is True and row["batches"]["rows_done"] == 0
    dbs.cli("resume", "003", "orion")
    dbs.cli("migrate", "orion")
    after = json.loads(dbs.cli("status", "orion", "--format", "json").stdout)
    jsonschema.validate(after, json.loads(SCHEMA_PATH.read_text()))
    (row,) = [m for m in after["databases"][0]["migrations"] if m["id"] == "003_count_rows"]
    assert row["state"] == "applied"
    assert row["batches"]["state"] == "done" and row["batches"]["paused"] is False
    assert row["batches"]["rows_done"] == row["batches"]["rows_total"] == 50_000
    assert row["batches"]["rows_per_second"] > 0
    # the rate is over the time the batches ran: the time between the progress row's first and last write
    times = progress_row(dbs, "003_count_rows")
    running = (times["updated_at"] - times["started_at"]).total_seconds()
    assert 0.8 * running - 0.05 <= times["seconds"] <= running + 0.05


def test_pause_stops_a_running_backfill_after_its_batch_and_resume_lets_the_next_migrate_finish(
    project, dbs: Databases
):
    rows = 3 * ROWS  # long enough that the pause (a process of its own) lands midway on a busy machine
    dbs.cli("migrate", "orion")
    counter_table(dbs, rows)
    write_staged(
        project, "003_count_rows", 'manager.batched_update(table="counted", set="n = n + 1", backwards=NOTHING_TO_UNDO)'
    )
    runner = dbs.popen("migrate", "orion")
    deadline = time.monotonic() + 60
    while not ((row := progress_row(dbs, "003_count_rows")) and row["rows_done"] > 0):
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.01)
    paused = dbs.cli("pause", "003_count_rows", "orion")
    assert "pauses after its current batch" in paused.stdout
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "003_count_rows is paused" in err and "make db-migrate-resume DB=orion ID=003_count_rows" in err
    stopped = progress_row(dbs, "003_count_rows")["rows_done"]
    assert 0 < stopped < rows
    assert dbs.sql("orion", "SELECT count(*) AS n FROM counted WHERE n = 1")[0]["n"] == stopped
    again = dbs.cli("migrate", "orion", expect=1)  # still paused: it does not start
    assert "is paused" in again.stderr
    assert progress_row(dbs, "003_count_rows")["rows_done"] == stopped
    assert "PAUSED" in dbs.cli("status", "orion").stdout
    dbs.cli("resume", "003", "orion")
    dbs.cli("migrate", "orion")
    counts = dbs.sql("orion", "SELECT n, count(*) AS rows FROM counted GROUP BY n")
    assert [(r["n"], r["rows"]) for r in counts] == [(1, rows)]


def test_a_migration_that_requires_a_backfill_refuses_to_run_until_the_backfill_has_finished(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    counter_table(dbs, 1_000)
    write_staged(
        project,
        "003_count_rows",
        'manager.batched_update(table="counted", set="n = n + 1", backwards=NOTHING_TO_UNDO)',
        extra='PHASE = "post"',
    )
    write_staged(
        project,
        "004_rely_on_counts",
        'require_finished(manager, "003_count_rows")\n'
        'manager.sql("ALTER TABLE counted ADD CONSTRAINT counted_once CHECK (n = 1)",\n'
        '            "ALTER TABLE counted DROP CONSTRAINT counted_once")',
    )
    refused = dbs.cli("migrate", "orion", "--phase", "pre", expect=1)
    assert "the batched migration orion 003_count_rows has not finished" in refused.stderr
    assert "004_rely_on_counts" not in dbs.applied("orion")
    assert not dbs.sql("orion", "SELECT 1 FROM pg_constraint WHERE conname = 'counted_once'")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion")[-2:] == ["003_count_rows", "004_rely_on_counts"]


def test_rolling_back_a_staged_migration_runs_every_stages_backwards_sql_in_one_transaction(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    counter_table(dbs, 1_000)
    write_staged(
        project,
        "003_add_doubled",
        'manager.sql("ALTER TABLE counted ADD COLUMN doubled bigint", "ALTER TABLE counted DROP COLUMN doubled")\n'
        'manager.batched_update(table="counted", set="doubled = id * 2", backwards=NOTHING_TO_UNDO)\n'
        'manager.sql("ALTER TABLE counted ADD CONSTRAINT doubled_ok CHECK (doubled = id * 2)", '
        '"ALTER TABLE counted DROP CONSTRAINT doubled_ok")',
    )
    dbs.cli("migrate", "orion")
    assert dbs.sql("orion", "SELECT count(*) AS n FROM counted WHERE doubled = id * 2")[0]["n"] == 1_000
    dbs.cli("down", "orion")
    columns = {
        r["attname"]
        for r in dbs.sql(
            "orion",
            "SELECT attname FROM pg_attribute WHERE attrelid = 'counted'::regclass AND attnum > 0 AND NOT attisdropped",
        )
    }
    assert columns == {"id", "n", "payload"}
    assert progress_row(dbs, "003_add_doubled") is None
    dbs.cli("migrate", "orion")  # and it applies again from the start
    assert dbs.sql("orion", "SELECT count(*) AS n FROM counted WHERE doubled = id * 2")[0]["n"] == 1_000


def test_a_batched_update_that_does_not_parse_is_refused_before_anything_runs(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_staged(
        project,
        "003_broken",
        'manager.sql("CREATE TABLE first_stage (id int)", "DROP TABLE first_stage")\n'
        'manager.batched_update(table="users", set="status = = 1", backwards=NOTHING_TO_UNDO)',
    )
    result = dbs.cli("migrate", "orion", expect=1)
    assert result.stderr.count("\n") == 1 and "the batched update of users does not parse" in result.stderr
    assert "first_stage" not in dbs.tables("orion")
    assert progress_row(dbs, "003_broken") is None
