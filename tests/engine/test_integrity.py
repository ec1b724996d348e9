"""Integrity: checksums, modified and missing files, out-of-order merges, repair and baseline
(the story's "never modify committed migrations", enforced)."""

from __future__ import annotations

import json

from migration_files import write_add_phone, write_sql_migration
from support import Databases, migration_ids


def add_phone(project):
    return write_add_phone(project, "905_add_phone")


def status_json(dbs: Databases, name: str) -> dict:
    return json.loads(dbs.cli("status", name, "--format", "json").stdout)["databases"][0]


def test_status_records_checksum_duration_and_who_applied_each_migration(project, dbs: Databases):
    add_phone(project)
    dbs.cli("migrate", "orion")
    rows = dbs.sql("orion", "SELECT * FROM dbmigrate_history WHERE migration_id = '905_add_phone'")
    assert len(rows) == 1 and len(rows[0]["checksum"]) == 64 and rows[0]["state"] == "applied"
    report = status_json(dbs, "orion")
    phone = next(r for r in report["migrations"] if r["id"] == "905_add_phone")
    assert phone["state"] == "applied" and phone["duration_ms"] is not None and "@" in phone["applied_by"]
    assert report["ok"] is True


def test_a_migration_modified_after_it_was_applied_is_flagged_and_blocks_migrate(project, dbs: Databases):
    path = add_phone(project)
    dbs.cli("migrate", "orion")
    path.write_text(path.read_text().replace("phone text", "phone varchar(20)"))
    write_sql_migration(project, "orion", "906_later", "CREATE TABLE later (id int)", "DROP TABLE later")
    assert "[M] 905_add_phone" in dbs.cli("status", "orion").stdout
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "905_add_phone was modified after it was applied" in err and "db-migrate-repair" in err
    assert "906_later" not in dbs.applied("orion")
    dbs.cli("status", "orion", "--check", expect=1)


def test_an_applied_migration_whose_file_is_missing_blocks_migrate(project, dbs: Databases):
    path = add_phone(project)
    dbs.cli("migrate", "orion")
    path.unlink()
    assert "[?] 905_add_phone" in dbs.cli("status", "orion").stdout
    err = dbs.cli("migrate", "orion", expect=1).stderr  # a copy of its down was stored: from another branch
    assert "905_add_phone applied from another branch" in err and "STEPS=1" in err and "repair" not in err
    dbs.sql("orion", "UPDATE dbmigrate_history SET down_sql = NULL WHERE migration_id = '905_add_phone'")
    err = dbs.cli("migrate", "orion", expect=1).stderr  # no copy (an older dbmigrate applied it)
    assert "905_add_phone was applied but its file is missing" in err and "db-migrate-repair" in err


def test_repair_accepts_the_files_as_they_are_now(project, dbs: Databases):
    path = add_phone(project)
    dbs.cli("migrate", "orion")
    path.write_text(path.read_text() + "\n# a comment added after the fact\n")
    out = dbs.cli("repair", "orion").stdout
    assert "recorded the current checksum of 905_add_phone" in out
    dbs.cli("migrate", "orion")
    assert status_json(dbs, "orion")["ok"] is True


def test_repair_accepts_a_deliberately_deleted_file(project, dbs: Databases):
    path = add_phone(project)
    dbs.cli("migrate", "orion")
    path.unlink()
    assert "accepted that the file of applied migration 905_add_phone is gone" in dbs.cli("repair", "orion").stdout
    out = dbs.cli("status", "orion").stdout
    assert "[-] 905_add_phone" in out
    dbs.cli("migrate", "orion")


def test_out_of_order_migrations_are_shown_and_applied_only_when_allowed(project, dbs: Databases):
    write_sql_migration(
        project, "orion", "910_main_branch", "CREATE TABLE main_branch (id int)", "DROP TABLE main_branch"
    )
    dbs.cli("migrate", "orion")
    write_sql_migration(project, "orion", "909_feature", "CREATE TABLE feature (id int)", "DROP TABLE feature")
    out = dbs.cli("status", "orion").stdout
    assert "[ ] 909_feature" in out and "OUT OF ORDER" in out
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert "909_feature numbered before the last applied migration (910_main_branch)" in err
    assert "OUT_OF_ORDER=1" in err
    err = dbs.cli("migrate", "orion", "--to", "910", expect=1).stderr  # not "up to date"
    assert "909_feature numbered before the last applied migration" in err
    dbs.cli("migrate", "orion", "--out-of-order")
    assert "909_feature" in dbs.applied("orion")
    # "down" reverts what was applied last, not the highest number.
    assert "reverted 909_feature" in dbs.cli("down", "orion").stdout
    assert "910_main_branch" in dbs.applied("orion")


def test_baseline_marks_an_existing_database_without_running_anything(dbs: Databases):
    out = dbs.cli("baseline", "orion", "--to", "001").stdout
    assert "marked 1 migration(s) as applied without running them, up to 001_initial_schema" in out
    assert dbs.applied("orion") == ["001_initial_schema"]
    assert dbs.tables("orion") == set()  # nothing ran
    err = dbs.cli("baseline", "orion", "--to", "001", expect=1).stderr
    assert "already has applied migrations" in err


def test_baseline_needs_a_known_version(dbs: Databases):
    err = dbs.cli("baseline", "orion", "--to", "999", expect=2).stderr
    assert "no migration '999'" in err
    err = dbs.cli("baseline", "orion", expect=2).stderr
    assert "baseline needs TO" in err


def test_status_check_fails_on_pending_and_json_says_the_same(dbs: Databases):
    result = dbs.cli("status", "--check", expect=1)
    assert "[ ] 001_initial_schema" in result.stdout
    assert "orion:" in result.stderr and "pending" in result.stderr
    report = json.loads(dbs.cli("status", "--format", "json", "--check", expect=1).stdout)
    assert [d["database"] for d in report["databases"]] == ["orion", "rfq", "marketdata"]
    assert report["databases"][0]["counts"]["pending"] == len(migration_ids("orion"))
    dbs.cli("migrate", "all")
    dbs.cli("status", "--check")
