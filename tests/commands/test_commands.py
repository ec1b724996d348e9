"""AC2 and AC5: migrate, down, create and status, per database and for all of them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from migration_files import write_add_phone, write_sql_migration
from support import Databases, migration_ids

from dbmigrate.core.config import DATABASES
from dbmigrate.server.catalog import first_difference

ORION_TABLES = {
    "tenants",
    "users",
    "user_roles",
    "user_entitlements",
    "outbox_events",
    "processed_events",
    "audit_log",
}


def next_number(name: str) -> int:
    return max(int(i.split("_")[0]) for i in migration_ids(name)) + 1


def test_migrate_all_applies_every_database_and_records_each_migration_once(dbs: Databases):
    out = dbs.cli("migrate", "all").stdout
    for name in DATABASES:
        assert dbs.applied(name) == migration_ids(name)
        assert f"{name}: applied 001_initial_schema" in out
    assert dbs.tables("orion") >= ORION_TABLES
    for name in ("rfq", "marketdata"):
        assert dbs.tables(name) >= {"outbox_events", "processed_events"}


def test_migrate_with_nothing_pending_changes_nothing(dbs: Databases):
    dbs.cli("migrate", "all")
    out = dbs.cli("migrate", "all").stdout
    for name in DATABASES:
        assert f"{name}: up to date, nothing to migrate" in out
        assert dbs.applied(name) == migration_ids(name)


def test_migrate_without_a_database_migrates_orion_only(dbs: Databases):
    dbs.cli("migrate")
    assert dbs.applied("orion") == migration_ids("orion")
    assert dbs.tables("rfq") == set()


def test_migrate_one_database_leaves_the_others_alone(dbs: Databases):
    dbs.cli("migrate", "rfq")
    assert dbs.applied("rfq") == migration_ids("rfq")
    assert dbs.tables("orion") == set() and dbs.tables("marketdata") == set()


def test_status_shows_applied_and_pending_migrations_of_every_database(project, dbs: Databases):
    write_add_phone(project, "902_add_phone")
    dbs.cli("migrate", "orion")
    write_sql_migration(
        project, "orion", "903_add_fax", "ALTER TABLE users ADD COLUMN fax text", "ALTER TABLE users DROP COLUMN fax"
    )
    out = dbs.cli("status").stdout
    assert "[x] 001_initial_schema" in out and "[x] 902_add_phone" in out
    assert "[ ] 903_add_fax" in out and "pending" in out
    assert f"{len(migration_ids('orion')) + 1} applied, 1 pending" in out
    assert "rfq (" in out and "marketdata (" in out and f"0 applied, {len(migration_ids('rfq'))} pending" in out


def test_down_rolls_back_the_last_migration_only(project, dbs: Databases):
    write_add_phone(project, "902_add_phone")
    dbs.cli("migrate", "orion")
    out = dbs.cli("down", "orion").stdout
    assert "orion: reverted 902_add_phone" in out
    assert dbs.applied("orion") == migration_ids("orion")
    columns = dbs.sql("orion", "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    assert "phone" not in {c["column_name"] for c in columns}


def test_down_forgets_only_its_own_apps_row(dbs: Databases):
    dbs.cli("migrate", "orion", "--to", "001")
    # Piccolo's backwards deletes rows by name across apps; ours must not touch another app's row.
    dbs.sql("orion", "INSERT INTO migration (name, app_name) VALUES ('001_initial_schema', 'other_app')")
    dbs.cli("down", "orion")
    rows = dbs.sql("orion", "SELECT app_name FROM migration WHERE name = '001_initial_schema'")
    assert [r["app_name"] for r in rows] == ["other_app"]


def test_up_to_the_end_down_to_zero_and_up_again_gives_the_same_schema(project, dbs: Databases):
    write_sql_migration(
        project,
        "orion",
        "902_add_order_limits",
        "CREATE TABLE order_limits (id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants(id));"
        "CREATE INDEX idx_order_limits_tenant ON order_limits(tenant_id)",
        "DROP TABLE order_limits",
    )
    empty = dbs.catalog("orion")
    dbs.cli("migrate", "orion")
    migrated = dbs.catalog("orion")
    dbs.cli("down", "orion")
    dbs.cli("down", "orion", "--steps", str(len(migration_ids("orion"))))
    assert dbs.applied("orion") == []
    assert first_difference(empty, dbs.catalog("orion")) is None
    dbs.cli("migrate", "orion")
    assert first_difference(migrated, dbs.catalog("orion")) is None


def test_down_with_nothing_applied_says_so_and_succeeds(dbs: Databases):
    result = dbs.cli("down", "rfq")  # as node-pg-migrate's down on an empty database
    assert result.stdout.strip() == "rfq: nothing to roll back" and result.stderr == ""


def test_down_refuses_a_migration_without_backwards_steps(project, dbs: Databases):
    write_sql_migration(project, "orion", "902_one_way", "CREATE TABLE one_way (id int)", None)
    dbs.cli("migrate", "orion")
    err = dbs.cli("down", "orion", expect=1).stderr
    assert "902_one_way cannot be rolled back" in err and "Traceback" not in err
    assert dbs.applied("orion") == migration_ids("orion") + ["902_one_way"]
    assert "one_way" in dbs.tables("orion")


def test_create_numbers_migrations_sequentially(project, dbs: Databases):
    n = next_number("orion")
    out = dbs.cli("create", "add_phone", "orion").stdout
    created = project / "orion" / "piccolo_migrations" / f"orion_{n:03d}_add_phone.py"
    assert created.is_file() and f"orion/piccolo_migrations/orion_{n:03d}_add_phone.py" in out
    assert f'ID = "{n:03d}_add_phone"' in created.read_text()
    dbs.cli("create", "add_fax", "orion")
    assert (project / "orion" / "piccolo_migrations" / f"orion_{n + 1:03d}_add_fax.py").is_file()
    dbs.cli("create", "first_rfq_change", "rfq")
    assert (project / "rfq" / "piccolo_migrations" / f"rfq_{next_number('rfq'):03d}_first_rfq_change.py").is_file()
    # An unfilled skeleton is refused before anything runs (tests/test_never_pretend.py has more).
    assert "forwards SQL is empty" in dbs.cli("migrate", "orion", expect=1).stderr
    assert dbs.applied("orion") == []


@pytest.mark.parametrize("name", ["has space", "../escape", "x'; DROP TABLE users; --", "CamelCase", ""])
def test_create_rejects_names_that_are_not_identifiers(project, dbs: Databases, name: str):
    before = sorted(project.glob("*/piccolo_migrations/*.py"))
    err = dbs.cli("create", name, "orion", expect=2).stderr
    assert "is not usable" in err and len(err.strip().splitlines()) == 1
    assert sorted(project.glob("*/piccolo_migrations/*.py")) == before


def test_create_auto_on_unchanged_tables_writes_no_file(project, dbs: Databases):
    before = sorted(project.glob("*/piccolo_migrations/*.py"))
    for name in DATABASES:
        out = dbs.cli("create", "nothing", name, "--auto").stdout
        assert "no changes detected" in out
    assert sorted(project.glob("*/piccolo_migrations/*.py")) == before


def test_create_auto_turns_a_tables_change_into_a_reversible_migration(project, dbs: Databases):
    tables = project / "rfq" / "tables.py"
    tables.write_text(
        tables.read_text() + '\n\nclass Desk(Table, tablename="desks"):\n    name = Varchar(length=100)\n'
    )
    n = next_number("rfq")
    dbs.cli("create", "add_desks", "rfq", "--auto")
    created = project / "rfq" / "piccolo_migrations" / f"rfq_{n:03d}_add_desks.py"
    assert f'ID = "{n:03d}_add_desks"' in created.read_text()
    dbs.cli("migrate", "rfq")
    assert "desks" in dbs.tables("rfq")
    dbs.cli("down", "rfq")
    assert "desks" not in dbs.tables("rfq")


def test_an_unknown_database_lists_the_valid_ones(dbs: Databases):
    err = dbs.cli("migrate", "orders", expect=2).stderr
    assert err.strip() == (
        "error: unknown database 'orders': choose one of orion, rfq, marketdata (or leave DB unset for all)"
    )


def test_a_no_op_migrate_imports_neither_piccolo_nor_the_sql_parser(dbs: Databases):
    dbs.cli("migrate", "all")
    check = (
        "import sys\n"
        "from dbmigrate import cli\n"
        "try:\n"
        "    cli.main(['migrate', 'all'])\n"
        "finally:\n"
        "    print('loaded:', sorted({m.split('.')[0] for m in sys.modules} & {'piccolo', 'pglast', 'black'}))\n"
        "    run_only = {'dbmigrate.engine.runner', 'dbmigrate.engine.lock', 'dbmigrate.engine.migration', 'shutil'}\n"
        "    print('run only:', sorted(run_only & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=dbs.cwd, env=dbs.env, capture_output=True, text=True, timeout=120
    )
    assert "up to date" in result.stdout and "loaded: []" in result.stdout, result.stdout + result.stderr
    # Nor what only a run with work needs (the runner, the lock, the migration interface), nor shutil
    # (argparse's help width): each is milliseconds of every no-op.
    assert "run only: []" in result.stdout, result.stdout + result.stderr
