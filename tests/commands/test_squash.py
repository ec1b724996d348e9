"""Squash: `make db-migrate-squash DB=orion TO=002` writes one baseline equal to the history up to
002 (schema, reference data, Piccolo's state); a new database runs it instead of the history, a
database that has the history never runs it; verify proves it builds the same catalog; and the
history can then be deleted, new databases migrating from the baseline and old ones going on."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from hostile_make import make
from migration_files import write_add_phone, write_sql_migration
from support import Databases, catalog_of, migration_ids, run_sql

from dbmigrate.core.urls import with_database

BASELINE = "002_squashed"


@contextlib.contextmanager
def another_orion(dbs: Databases) -> Iterator[str]:
    """One more empty database beside the test's own, and the CLI pointed at it as orion's."""
    name = f"{dbs.prefix}_orion_{uuid.uuid4().hex[:6]}"
    run_sql(dbs.server_url, f'CREATE DATABASE "{name}"')
    url = with_database(dbs.server_url, name)
    saved = dict(dbs.extra_env)
    dbs.extra_env["DATABASE_URL"] = url
    try:
        yield url
    finally:
        dbs.extra_env.clear()
        dbs.extra_env.update(saved)
        run_sql(dbs.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def applied(url: str) -> list[str]:
    return [r["name"] for r in run_sql(url, "SELECT name FROM migration WHERE app_name = 'orion' ORDER BY id")]


def folder(project: Path) -> Path:
    return project / "orion" / "piccolo_migrations"


def delete_history(project: Path, *ids: str) -> None:
    for migration_id in ids:
        (folder(project) / f"orion_{migration_id}.py").unlink()


def test_a_squashed_orion_builds_the_catalog_of_its_history_and_a_database_at_002_applies_nothing(
    project, dbs: Databases
):
    dbs.cli("migrate", "orion")  # a database at 002, from before the squash
    squashed = make(dbs, "db-migrate-squash", "DB=orion", "TO=002")
    assert squashed.returncode == 0, squashed.stderr
    assert "a baseline standing for 2 migration(s) up to 002_audit_log_append_only" in squashed.stdout
    assert (folder(project) / f"orion_{BASELINE}.py").is_file()
    assert (folder(project) / f"orion_{BASELINE}.up.sql").is_file()
    assert "up to date, nothing to migrate" in dbs.cli("migrate", "orion").stdout
    assert dbs.applied("orion") == migration_ids("orion")  # never the baseline
    with another_orion(dbs) as url:
        fresh = dbs.cli("migrate", "orion")
        assert f"applied {BASELINE}" in fresh.stdout and "001_initial_schema" not in fresh.stdout
        assert applied(url) == [BASELINE]
        dbs.cli("status", "orion", "--check")  # nothing pending: the baseline stands for the history
        assert catalog_of(url) == dbs.catalog("orion")
    dbs.cli("status", "orion", "--check")
    assert "no changes detected" in dbs.cli("create", "drift", "orion", "--auto").stdout  # Piccolo sees one history


def test_the_baseline_carries_the_reference_data_the_migrations_inserted_and_later_migrations_follow_it(
    project, dbs: Databases
):
    write_sql_migration(
        project,
        "orion",
        "003_currencies",
        "CREATE TABLE currencies (code char(3) PRIMARY KEY, name text NOT NULL, id serial UNIQUE); "
        "INSERT INTO currencies (code, name) VALUES ('EUR', 'euro'), ('USD', 'dollar'), ('JPY', 'yen');",
        "DROP TABLE currencies",
    )
    dbs.cli("migrate", "orion")
    dbs.cli("squash", "orion", "--to", "003")
    write_add_phone(project, "004_add_phone")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == [*migration_ids("orion"), "003_currencies", "004_add_phone"]
    with another_orion(dbs) as url:
        dbs.cli("migrate", "orion")
        assert applied(url) == ["003_squashed", "004_add_phone"]
        rows = run_sql(url, "SELECT code, name, id FROM currencies ORDER BY id")
        assert [tuple(r) for r in rows] == [("EUR", "euro", 1), ("USD", "dollar", 2), ("JPY", "yen", 3)]
        assert run_sql(url, "SELECT nextval('currencies_id_seq') AS n")[0]["n"] == 4  # the sequence goes on
        assert catalog_of(url) == dbs.catalog("orion")


def test_verify_proves_the_baseline_and_refuses_one_that_builds_another_schema(project, dbs: Databases):
    dbs.cli("squash", "orion", "--to", "002")
    proved = dbs.cli("verify", "orion", timeout=300)
    assert f"ok   squash: {BASELINE} builds the catalog and the rows of the 2 migration(s) it replaces" in proved.stdout
    sql = folder(project) / f"orion_{BASELINE}.up.sql"
    text = sql.read_text()
    assert "CREATE INDEX idx_tenants_status ON public.tenants USING btree (status);" in text
    sql.write_text(text.replace("CREATE INDEX idx_tenants_status ON public.tenants USING btree (status);", ""))
    refused = dbs.cli("verify", "orion", expect=1, timeout=300)
    line = next(line for line in refused.stderr.splitlines() if "FAIL squash" in line)  # problems go to stderr
    assert f"{BASELINE} builds another schema than the history it replaces: indexes: missing idx_tenants_status" in line


def test_after_the_history_is_deleted_a_new_database_migrates_from_the_baseline_and_one_at_002_goes_on(
    project, dbs: Databases
):
    dbs.cli("migrate", "orion")  # at 002
    with another_orion(dbs) as at_001:
        dbs.cli("migrate", "orion", "--to", "001")
        dbs.extra_env.pop("DATABASE_URL")
        dbs.cli("squash", "orion", "--to", "002")
        delete_history(project, *migration_ids("orion"))  # the later commit
        write_add_phone(project, "003_add_phone")
        on_002 = dbs.cli("migrate", "orion")
        assert "applied 003_add_phone" in on_002.stdout and BASELINE not in on_002.stdout
        assert dbs.applied("orion") == [*migration_ids("orion"), "003_add_phone"]
        dbs.cli("status", "orion", "--check")  # the deleted files are not "missing"
        dbs.extra_env["DATABASE_URL"] = at_001
        stuck = dbs.cli("migrate", "orion", expect=1)
        assert stuck.stderr.count("\n") == 1 and "Traceback" not in stuck.stderr
        assert (
            f"has 001_initial_schema of the migrations baseline {BASELINE} replaces, but not "
            "002_audit_log_append_only, whose file(s) are gone: restore them" in stuck.stderr
        )
        assert applied(at_001) == ["001_initial_schema"]
    with another_orion(dbs) as url:
        dbs.cli("migrate", "orion")
        assert applied(url) == [BASELINE, "003_add_phone"]
        assert catalog_of(url) == dbs.catalog("orion")
    verified = dbs.cli("verify", "orion", expect=1, timeout=300)  # drift fails: the snapshot lacks phone
    assert "ok   migrate up, down, up: 2 migration(s) applied from empty" in verified.stdout
    assert f"1 irreversible, not rolled back: {BASELINE}" in verified.stdout
    assert "no changes detected" in dbs.cli("create", "drift", "orion", "--auto").stdout  # the state from the baseline


def test_squashing_again_replaces_the_old_baseline_and_databases_built_from_it_apply_nothing(project, dbs: Databases):
    dbs.cli("squash", "orion", "--to", "002")
    with another_orion(dbs) as from_old_baseline:
        dbs.cli("migrate", "orion")
        write_add_phone(project, "003_add_phone")
        dbs.cli("migrate", "orion")
        assert applied(from_old_baseline) == [BASELINE, "003_add_phone"]
        dbs.cli("squash", "orion", "--to", "003")
        assert not (folder(project) / f"orion_{BASELINE}.py").exists()
        text = (folder(project) / "orion_003_squashed.py").read_text()
        assert all(f'"{i}"' in text for i in [*migration_ids("orion"), BASELINE, "003_add_phone"])
        assert "up to date, nothing to migrate" in dbs.cli("migrate", "orion").stdout
    with another_orion(dbs) as url:
        dbs.cli("migrate", "orion")
        assert applied(url) == ["003_squashed"]


def test_squash_without_to_or_with_an_unknown_migration_is_refused_in_one_line(dbs: Databases):
    for args, expected in (
        (["squash", "orion"], "squash needs TO"),
        (["squash", "orion", "--to", "999"], "no migration '999'"),
    ):
        result = dbs.cli(*args, expect=2)
        assert result.stderr.count("\n") == 1 and expected in result.stderr
