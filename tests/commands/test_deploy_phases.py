"""Deploy phases: `make db-migrate PHASE=pre` before the deploy applies the pre-deploy migrations and
leaves the post-deploy ones (PHASE = "post") pending, without calling that out of order; the
migrate after the deploy applies them; status, create, the fleet and Piccolo's CLI honour phases;
verify refuses a pre-deploy migration that depends on a post-deploy one of the same deploy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from hostile_make import make, make_error
from migration_files import write_sql_migration
from support import Databases, migration_ids

from dbmigrate.core.config import DATABASES
from dbmigrate.engine.files import discover

PICCOLO = str(Path(sys.executable).parent / "piccolo")


def write(project: Path, migration_id: str, forwards: str, backwards: str, phase: str = "pre") -> Path:
    path = write_sql_migration(project, "orion", migration_id, forwards, backwards)
    if phase == "post":
        path.write_text(
            path.read_text().replace('DESCRIPTION = "test migration"\n', 'DESCRIPTION = "x"\nPHASE = "post"\n')
        )
    return path


def write_contract_and_expand(project: Path) -> tuple[str, str]:
    """003 (post-deploy) drops a column the old code reads; 004 (pre-deploy) adds an unrelated one."""
    write(
        project,
        "003_drop_display_name",
        "ALTER TABLE users DROP COLUMN display_name",
        "ALTER TABLE users ADD COLUMN display_name varchar(255)",
        phase="post",
    )
    write(project, "004_add_phone", "ALTER TABLE users ADD COLUMN phone text", "ALTER TABLE users DROP COLUMN phone")
    return "003_drop_display_name", "004_add_phone"


def columns(dbs: Databases, table: str) -> set[str]:
    rows = dbs.sql("orion", "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table)
    return {r["column_name"] for r in rows}


def test_phase_pre_leaves_the_post_deploy_migration_pending_and_the_migrate_after_the_deploy_applies_it(
    project, dbs: Databases
):
    dbs.cli("migrate", "orion")
    post, pre = write_contract_and_expand(project)
    before = dbs.cli("migrate", "orion", "--phase", "pre")
    assert f"applied {pre}" in before.stdout and f"applied {post}" not in before.stdout
    assert f"1 post-deploy migration(s) left pending for after the deploy ({post})" in before.stdout
    assert "display_name" in columns(dbs, "users") and "phone" in columns(dbs, "users")
    status = dbs.cli("status", "orion").stdout
    assert re.search(rf"\[ \] {post} +pending \(post-deploy\)", status) and "OUT OF ORDER" not in status
    again = dbs.cli("migrate", "orion", "--phase", "pre")
    assert "no pre-deploy migration pending" in again.stdout and post in again.stdout
    after = dbs.cli("migrate", "orion")
    assert f"applied {post}" in after.stdout and "display_name" not in columns(dbs, "users")
    assert dbs.applied("orion") == [*migration_ids("orion"), pre, post]
    assert "up to date" in dbs.cli("migrate", "orion", "--phase", "post").stdout


def test_status_json_gives_each_migrations_phase(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    post, pre = write_contract_and_expand(project)
    report = json.loads(dbs.cli("status", "orion", "--format", "json").stdout)["databases"][0]
    phases = {row["id"]: row["phase"] for row in report["migrations"]}
    assert phases == {**{i: "pre" for i in migration_ids("orion")}, post: "post", pre: "pre"}


def test_make_db_migrate_phase_pre_and_make_create_phase_post(project, dbs: Databases):
    created = make(dbs, "db-migrate-create", "NAME=drop_old_column", "PHASE=post")
    assert created.returncode == 0, created.stderr
    (written,) = [m for m in discover(project, DATABASES["orion"]) if m.id.endswith("_drop_old_column")]
    assert written.phase == "post" and 'PHASE = "post"' in written.path.read_text()
    written.path.write_text(  # fill the skeleton
        written.path.read_text()
        .replace('FORWARDS_SQL = """\n', 'FORWARDS_SQL = """\nDROP TABLE audit_log;\n')
        .replace('BACKWARDS_SQL = """\n', 'BACKWARDS_SQL = """\nSELECT 1;\n')
    )
    applied = make(dbs, "db-migrate", "PHASE=pre")
    assert applied.returncode == 0, applied.stderr
    assert dbs.applied("orion") == migration_ids("orion") and "audit_log" in dbs.tables("orion")
    assert "left pending for after the deploy" in applied.stdout
    make_error(make(dbs, "db-migrate", "PHASE=later"), "PHASE='later' is not a deploy phase")
    assert make(dbs, "db-migrate").returncode == 0
    assert "audit_log" not in dbs.tables("orion")


def test_verify_refuses_a_pre_deploy_migration_that_depends_on_a_post_deploy_one_of_the_same_deploy(
    project, dbs: Databases
):
    post, pre = write_contract_and_expand(project)
    passed = dbs.cli("verify", "orion", expect=1, timeout=300)  # drift and lint fail: the snapshot is not redone
    assert f"ok   phases: pre-deploy migrations first, post-deploy {post} after the deploy" in passed.stdout
    # 005 (pre-deploy) re-adds the column 003 (post-deploy) drops: it fails while 003 waits
    write(
        project,
        "005_display_name_as_text",
        "ALTER TABLE users ADD COLUMN display_name text",
        "ALTER TABLE users DROP COLUMN display_name",
    )
    refused = dbs.cli("verify", "orion", expect=1, timeout=300)
    line = next(line for line in refused.stderr.splitlines() if "FAIL phases" in line)  # problems go to stderr
    assert f"before the post-deploy {post}" in line and "005_display_name_as_text" in line
    assert 'column "display_name" of relation "users" already exists' in line


def test_a_fleet_with_phase_pre_leaves_post_deploy_migrations_pending_on_every_database(
    project, dbs: Databases, tcp_dbs: Databases, tmp_path: Path
):
    tcp_dbs.cwd = project
    targets = tmp_path / "fleet.txt"
    targets.write_text(f"orion {dbs.url('orion')}\norion {tcp_dbs.url('orion')}\n")
    dbs.cli("migrate-fleet", "--targets", str(targets))
    post, pre = write_contract_and_expand(project)
    result = dbs.cli("migrate-fleet", "--targets", str(targets), "--phase", "pre")
    assert "pre-deploy migrations only (PHASE=pre)" in result.stdout
    assert result.stdout.count("applied 1; 1 post-deploy pending") == 2
    for group in (dbs, tcp_dbs):
        assert group.applied("orion") == [*migration_ids("orion"), pre]
    dbs.cli("migrate-fleet", "--targets", str(targets))
    for group in (dbs, tcp_dbs):
        assert group.applied("orion") == [*migration_ids("orion"), pre, post]


def test_piccolos_cli_honours_orion_migrate_phase(project, dbs: Databases):
    def piccolo(*args: str, phase: str) -> subprocess.CompletedProcess:
        env = {**dbs.env, "ORION_MIGRATE_PHASE": phase}
        return subprocess.run([PICCOLO, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)

    dbs.cli("migrate", "orion")
    post, pre = write_contract_and_expand(project)
    assert piccolo("migrations", "forwards", "orion", phase="pre").returncode == 0
    assert dbs.applied("orion") == [*migration_ids("orion"), pre]
    assert piccolo("migrations", "forwards", "orion", phase="post").returncode == 0
    assert dbs.applied("orion") == [*migration_ids("orion"), pre, post]
    created = piccolo("migrations", "new", "orion", "--desc=later step", phase="post")
    assert created.returncode == 0, created.stderr
    (new,) = [m for m in discover(project, DATABASES["orion"]) if m.id.endswith("_later_step")]
    assert new.phase == "post"
    bad = piccolo("migrations", "forwards", "orion", phase="sometime")
    assert "ORION_MIGRATE_PHASE: PHASE='sometime' is not a deploy phase" in bad.stderr
