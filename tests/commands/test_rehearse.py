"""Issue 19, "Safe on a live database": db-rehearse applies the pending migrations to a scratch copy
full of rows while a workload runs, and fails each one that blocks that workload longer than
MAX_BLOCK; the safe versions block it for less than 100 ms; whatever it creates is dropped."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import jsonschema
import pytest
from live_tables import DANGEROUS, SAFE, write_live_migrations
from migration_files import write_sql_migration
from support import Databases

from dbmigrate.commands.rehearse_report import SCHEMA_PATH
from dbmigrate.core.urls import database_name

# Far fewer rows than a production table (1,000,000 are measured by hand), enough that each
# dangerous change holds its lock for a few hundred milliseconds on the test server even when the
# machine is idle (with 100,000-200,000 rows, an idle machine finished some in 70-99 ms).
ROWS = (
    "100000,users=400000,user_roles=400000,user_entitlements=400000,"
    "tenants=1000,audit_log=1000,outbox_events=1000,processed_events=1000"
)
MAX_BLOCK_MS = 100


def scratch_databases(dbs: Databases) -> set[str]:
    rows = dbs.sql("orion", "SELECT datname FROM pg_database WHERE datname LIKE 'dbmigrate\\_rehearse\\_%'")
    return {r["datname"] for r in rows}


def scratch_name(output: str) -> str:
    return re.search(r"rehearsing on scratch database (\S+)", output).group(1)


@pytest.mark.timing
def test_each_dangerous_change_blocks_the_workload_past_max_block_and_each_safe_version_stays_under(
    project, dbs: Databases, tmp_path
):
    dbs.cli("migrate", "orion")
    before = dbs.catalog("orion")
    write_live_migrations(project, {**DANGEROUS, **SAFE})
    summary = tmp_path / "rehearsal.md"
    result = dbs.cli(
        "rehearse",
        "orion",
        *("--rows", ROWS, "--clients", "8", "--max-block", f"{MAX_BLOCK_MS}ms"),
        *("--format", "json", "--summary", str(summary)),
        expect=1,
        timeout=300,
    )
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    results = {m["migration"]: m for m in document["migrations"]}
    assert list(results) == [*DANGEROUS, *SAFE]  # every pending migration applied, in order
    for migration_id in DANGEROUS:
        measured = results[migration_id]
        assert measured["verdict"] == "BLOCKS" and measured["blocked_ms"] > MAX_BLOCK_MS, measured
        assert f"orion: {migration_id} held the workload up for " in result.stderr
        assert measured["during"]["p99_ms"] > measured["before"]["p99_ms"]
    for migration_id in SAFE:
        measured = results[migration_id]
        assert measured["verdict"] == "ok" and measured["blocked_ms"] < 100, measured
        assert measured["failed_queries"] == 0, measured
    # Sizes come from the catalog: a rewrite of user_roles with a new column, an index built on users.
    assert (
        results["905_index_display_name"]["sizes_after"]["users"]
        > results["905_index_display_name"]["sizes_before"]["users"]
    )
    assert set(results["906_roles_fk_validated"]["sizes_before"]) == {"user_roles", "users"}
    # Progress while it fills and runs, and the table at the end.
    assert re.search(r"filling 7 table\(s\): [\d,]+ of 1,204,000 rows", result.stderr)
    assert "rehearsal on 100,000 rows per table (audit_log 1,000" in result.stderr
    assert "| 905_index_display_name |" in summary.read_text() and "❌ blocks" in summary.read_text()
    # The scratch database is gone; the database rehearsed is as it was.
    assert scratch_name(result.stderr) not in scratch_databases(dbs)
    assert dbs.applied("orion") == ["001_initial_schema", "002_audit_log_append_only"]
    assert dbs.catalog("orion") == before


def test_interrupted_while_filling_drops_the_scratch_database(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_live_migrations(project, {"905_index_display_name": DANGEROUS["905_index_display_name"]})
    runner = dbs.popen("rehearse", "orion", "--rows", "2000000")
    lines = []
    for line in runner.stdout:
        lines.append(line)
        if "filling" in line:
            break
    runner.send_signal(signal.SIGINT)
    try:
        _, err = runner.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        runner.kill()
        raise
    assert runner.returncode == 130
    assert err.strip() == "error: interrupted: the rehearsal's scratch database was dropped; nothing else was changed"
    assert scratch_name("".join(lines)) not in scratch_databases(dbs)


def test_a_rehearsal_starts_from_a_copy_of_a_named_database_or_from_a_base_branch(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    dbs.sql("orion", "INSERT INTO tenants (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'acme')")
    dbs.sql(
        "orion",
        "INSERT INTO users (tenant_id, email, username) SELECT '00000000-0000-4000-8000-000000000001', "
        "'u' || n || '@acme.test', 'u' || n FROM generate_series(1, 500) n",
    )
    write_live_migrations(project, {"905_index_display_name": DANGEROUS["905_index_display_name"]})
    source = database_name(dbs.url("orion"))
    copied = dbs.cli("rehearse", "orion", "--from-db", source, "--max-block", "10s", timeout=120)
    assert f"rehearsal on a copy of {source}, 8 client(s), MAX_BLOCK 10s" in copied.stdout
    assert re.search(r"905_index_display_name .* ok", copied.stdout)
    assert "filling" not in copied.stdout  # a copy keeps its own rows
    assert dbs.sql("orion", "SELECT to_regclass('idx_users_display_name') IS NULL AS absent")[0]["absent"]

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=project, check=True)
    (project / "orion" / "piccolo_migrations" / "orion_905_index_display_name.py").rename(project / "later.py")
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=project, check=True)
    (project / "later.py").rename(project / "orion" / "piccolo_migrations" / "orion_905_index_display_name.py")
    based = dbs.cli("rehearse", "orion", "--base", "main", "--rows", "1000", "--max-block", "10s", timeout=120)
    assert "base: 2 migration(s), up to 002_audit_log_append_only, on a scratch database" in based.stdout
    assert "filled 7 table(s) with 7,000 rows" in based.stdout
    assert re.search(r"905_index_display_name .* ok", based.stdout)


def test_nothing_pending_is_said_and_bad_options_are_one_line_errors(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    assert "nothing pending to rehearse" in dbs.cli("rehearse", "orion").stdout
    write_sql_migration(
        project, "orion", "905_x", "ALTER TABLE users ADD COLUMN x int", "ALTER TABLE users DROP COLUMN x"
    )
    for args, message in [
        (("--rows", "lots"), "ROWS='lots' is not understood: write ROWS=1000000 or ROWS=1000000,users=50000"),
        (("--max-block", "soon"), "MAX_BLOCK='soon' is not a duration: write e.g. 200ms, 1s or 2min"),
        (("--base", "main", "--from-db", "x"), "BASE and FROM_DB both name the starting point: give one of them"),
    ]:
        err = dbs.cli("rehearse", "orion", *args, expect=2).stderr
        assert err == f"error: {message}\n"
    err = dbs.cli("rehearse", "orion", "--from-db", "no_such_db", expect=1).stderr
    assert err == "error: FROM_DB='no_such_db' is not a database on orion's server: name one that is there\n"
