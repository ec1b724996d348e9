"""Piccolo's own CLI is safe: each app's commands reach that app's own database, never another's,
with no environment variable; files made by `piccolo migrations new` and `make db-migrate-create`
share one numbering; generated files pass `make lint` as written (issue 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import Databases, migration_ids

PICCOLO = str(Path(sys.executable).parent / "piccolo")
RUFF = str(Path(sys.executable).parent / "ruff")
ROOT_DIR = Path(__file__).resolve().parents[2]


def piccolo(dbs: Databases, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in dbs.env.items() if k != "ORION_DB"}
    result = subprocess.run([PICCOLO, *args], cwd=dbs.cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, (
        f"piccolo {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def test_forwards_of_one_app_migrates_that_apps_database_only(dbs: Databases):
    piccolo(dbs, "migrations", "forwards", "rfq")
    assert dbs.applied("rfq") == migration_ids("rfq")
    assert dbs.applied("orion") == [] and dbs.tables("orion") == set()
    assert "up to date" in dbs.cli("migrate", "rfq").stdout  # the same bookkeeping, with checksums
    assert "2 applied, 0 pending" in dbs.cli("status", "rfq", "--check").stdout


def test_forwards_all_puts_each_app_in_its_own_database(dbs: Databases):
    piccolo(dbs, "migrations", "forwards", "all")
    for name in ("orion", "rfq", "marketdata"):
        assert dbs.applied(name) == migration_ids(name)


def test_check_reports_every_app_against_its_own_database(dbs: Databases):
    dbs.cli("migrate", "all")
    out = piccolo(dbs, "migrations", "check").stdout
    rows = [line for line in out.splitlines() if line.rstrip().endswith(("| True", "| False"))]
    assert len(rows) == sum(len(migration_ids(n)) for n in ("orion", "rfq", "marketdata"))
    assert all(row.rstrip().endswith("| True") for row in rows), out


def test_backwards_goes_through_dbmigrate_and_refuses_what_it_cannot_undo(project, dbs: Databases):
    from migration_files import write_sql_migration

    dbs.cli("migrate", "orion")
    piccolo(dbs, "migrations", "backwards", "orion", "--auto_agree")
    assert dbs.applied("orion") == migration_ids("orion")[:-1]
    dbs.cli("migrate", "orion")
    write_sql_migration(project, "orion", "905_one_way", "CREATE TABLE one_way (id int)", None)
    dbs.cli("migrate", "orion")
    err = piccolo(dbs, "migrations", "backwards", "orion", "--auto_agree", expect=1).stderr
    assert "905_one_way cannot be rolled back" in err
    assert "one_way" in dbs.tables("orion")


def test_new_and_create_share_one_numbering_in_either_order(project, dbs: Databases):
    folder = project / "orion" / "piccolo_migrations"
    n = len(migration_ids("orion")) + 1
    piccolo(dbs, "migrations", "new", "orion", "--desc=add limits")
    dbs.cli("create", "add_fax", "orion")
    piccolo(dbs, "migrations", "new", "orion", "--desc=add phone")
    names = sorted(p.name for p in folder.glob("orion_*.py"))[-3:]
    assert names == [f"orion_{n:03d}_add_limits.py", f"orion_{n + 1:03d}_add_fax.py", f"orion_{n + 2:03d}_add_phone.py"]
    out = dbs.cli("status", "orion").stdout
    assert "OUT OF ORDER" not in out


def test_an_auto_migration_from_piccolo_passes_lint_as_written_and_applies(project, dbs: Databases):
    tables = project / "rfq" / "tables.py"
    tables.write_text(
        tables.read_text() + '\n\nclass Desk(Table, tablename="desks"):\n    name = Varchar(length=100)\n'
    )
    piccolo(dbs, "migrations", "new", "rfq", "--auto", "--desc=add desks")
    (created,) = (project / "rfq" / "piccolo_migrations").glob("rfq_*_add_desks.py")
    subprocess.run([RUFF, "format", "--check", str(created)], cwd=project, check=True, capture_output=True)
    dbs.cli("migrate", "rfq")
    assert "desks" in dbs.tables("rfq")


def test_an_unknown_app_is_refused_in_one_line(dbs: Databases):
    result = piccolo(dbs, "migrations", "forwards", "user", expect=1)
    assert "'user' is not one of dbmigrate's apps" in result.stderr and "Traceback" not in result.stderr


def test_auto_migrations_are_compact_and_replay_to_the_same_schema_state(project, dbs: Databases):
    tables = project / "rfq" / "tables.py"
    tables.write_text(
        tables.read_text() + '\n\nclass Desk(Table, tablename="desks"):\n'
        "    name = Varchar(length=100)\n    code = Varchar(length=10, unique=True, index=True)\n"
        "    opened = Timestamptz()\n"
    )
    dbs.cli("create", "add_desks", "rfq", "--auto")
    (created,) = (project / "rfq" / "piccolo_migrations").glob("rfq_*_add_desks.py")
    text = created.read_text()
    assert '"null": False' not in text and "IndexMethod" not in text and "schema=None" not in text
    assert 'params={"length": 10, "unique": True, "index": True}' in text
    assert len(text.splitlines()) < 55
    assert "no changes detected" in dbs.cli("create", "again", "rfq", "--auto").stdout  # same snapshot
    subprocess.run([RUFF, "check", str(created)], cwd=project, check=True, capture_output=True)
    dbs.cli("migrate", "rfq")
    columns = dbs.sql(
        "rfq", "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = 'desks'"
    )
    assert {r["column_name"]: r["is_nullable"] for r in columns} == {
        "id": "NO",
        "name": "NO",
        "code": "NO",
        "opened": "NO",
    }


def test_piccolo_works_from_a_subdirectory_of_the_project(dbs: Databases):
    dbs.cli("migrate", "rfq")
    # A project's .venv has its root on the path (the editable install); this project is a copy
    # of the fixture, so its root goes on the path the same way (not the repository's apps).
    dbs.extra_env["PYTHONPATH"] = str(dbs.cwd)
    dbs.cwd = dbs.cwd / "rfq"
    out = piccolo(dbs, "migrations", "check").stdout
    rows = [line for line in out.splitlines() if line.startswith("rfq ")]
    assert rows and all(row.rstrip().endswith("| True") for row in rows), out


def test_shared_event_tables_are_defined_once_and_every_app_finds_them():
    from piccolo.conf.apps import Finder

    from dbmigrate.testing.helpers import ROOT

    for app in ("orion", "rfq", "marketdata"):
        names = {t._meta.tablename for t in Finder().get_app_config(app).table_classes}
        assert {"outbox_events", "processed_events"} <= names
        assert "event_type = Varchar" not in (ROOT / app / "tables.py").read_text()
    assert (ROOT / "common" / "event_tables.py").read_text().count("event_type = Varchar") == 2


def test_make_db_migrate_create_transaction_0_writes_a_non_transactional_migration(project, dbs: Databases):
    env = {**dbs.env, "ORION_PROJECT_ROOT": str(project)}
    subprocess.run(
        ["make", "-s", "-C", str(ROOT_DIR), "db-migrate-create", "NAME=index_emails", "TRANSACTION=0"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    (created,) = (project / "orion" / "piccolo_migrations").glob("orion_*_index_emails.py")
    text = created.read_text()
    assert "wrap_in_transaction=False" in text
    created.write_text(
        text.replace(
            'FORWARDS_SQL = """\n',
            'FORWARDS_SQL = """\nCREATE INDEX CONCURRENTLY idx_a ON users (email);\n'
            "CREATE INDEX CONCURRENTLY idx_b ON users (username);\n",
        ).replace(
            'BACKWARDS_SQL = """\n',
            'BACKWARDS_SQL = """\nDROP INDEX CONCURRENTLY idx_b;\nDROP INDEX CONCURRENTLY idx_a;\n',
        )
    )
    dbs.cli("migrate", "orion")
    dbs.cli("down", "orion")
    assert dbs.applied("orion") == migration_ids("orion")
