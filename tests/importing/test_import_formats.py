"""Import, without a server: reading dbmate, golang-migrate, Flyway and node-pg-migrate histories,
and writing them as this framework's migration files."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import FIXTURE_PROJECT

from dbmigrate.core.errors import UserError
from dbmigrate.engine.sql_migration import NOTHING_TO_UNDO
from dbmigrate.importing.reading import detect_format, read_history
from dbmigrate.importing.source import FORMATS, has_statements, must_run_outside_transaction
from dbmigrate.importing.writer import migration_name, plan, source_of, write
from dbmigrate.testing.helpers import ROOT, copy_project

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
STEP_COUNT = 36
NON_TRANSACTIONAL = [6, 26]  # the two CREATE INDEX CONCURRENTLY migrations, 1-based
NO_DOWN, EMPTY_DOWN, EMPTY_UP_AND_DOWN = 13, 10, 14


@pytest.mark.parametrize("tool", FORMATS)
def test_each_history_is_detected_and_read_in_the_tools_order(tool: str):
    detected, history = read_history(HISTORIES / tool)
    assert detected == tool == detect_format(HISTORIES / tool)
    assert len(history) == STEP_COUNT
    names = [m.name.replace("-", "_") for m in history]
    assert names[0] == "create_stock_status_enum" and names[-1] == "discontinue_empty_items"
    assert names[19] == "rename_item_title"


def test_flyway_versions_order_by_number_part_by_part_not_as_text():
    _, history = read_history(HISTORIES / "flyway")
    versions = [m.version for m in history]
    assert versions[8:12] == ["9", "9.1", "9.2", "12"]  # as text, "12" < "9.1"
    assert versions[18:21] == ["19", "19.5", "21"]  # V19_5__ is version 19.5
    assert history[-1].source.startswith("sql/")  # scripts in sub-folders count, as in Flyway


@pytest.mark.parametrize("tool", FORMATS)
def test_non_transactional_markers_are_carried_over(tool: str):
    _, history = read_history(HISTORIES / tool)
    assert [i for i, m in enumerate(history, start=1) if not m.transactional] == NON_TRANSACTIONAL


@pytest.mark.parametrize("tool", FORMATS)
def test_missing_and_empty_downs_are_irreversible_unless_the_up_is_empty_too(tool: str):
    _, history = read_history(HISTORIES / tool)
    assert [i for i, m in enumerate(history, start=1) if not m.reversible] == sorted([NO_DOWN, EMPTY_DOWN])
    assert history[EMPTY_UP_AND_DOWN - 1].up_is_empty and history[EMPTY_UP_AND_DOWN - 1].reversible


def test_sql_is_kept_verbatim():
    _, golang = read_history(HISTORIES / "golang-migrate")
    assert golang[3].up == (HISTORIES / "golang-migrate" / "000004_touch_updated_at_trigger.up.sql").read_text()
    _, dbmate = read_history(HISTORIES / "dbmate")
    source = (HISTORIES / "dbmate" / "20240105000004_touch_updated_at_trigger.sql").read_text()
    assert source == f"-- migrate:up\n{dbmate[3].up}-- migrate:down\n{dbmate[3].down}"
    _, node = read_history(HISTORIES / "node-pg-migrate")
    source = (HISTORIES / "node-pg-migrate" / "1704450017000_audit-log.sql").read_text()
    assert source == f"-- Up Migration\n{node[16].up}-- Down Migration\n{node[16].down}"


def test_crlf_line_endings_survive(tmp_path: Path):
    (tmp_path / "1_a.up.sql").write_bytes(b"SELECT 1;\r\nSELECT 2;\r\n")
    _, history = read_history(tmp_path)
    assert history[0].up == "SELECT 1;\r\nSELECT 2;\r\n"


def test_comments_quoted_text_and_dollar_quotes_hide_what_looks_like_sql():
    def outside(sql: str) -> bool:
        return must_run_outside_transaction(sql, "x.sql")

    assert not has_statements("-- nothing\n/* still /* nested */ nothing */\n  \n")
    assert has_statements("SELECT 1")
    assert not outside("-- CREATE INDEX CONCURRENTLY x ON t (a);\nSELECT 1;")
    assert not outside("SELECT 'CREATE INDEX CONCURRENTLY';")
    assert not outside("DO $body$ BEGIN RAISE NOTICE 'vacuum'; END $body$; SELECT '$$';")
    assert not outside('SELECT 1 AS "concurrently";')
    assert outside("/* index */ CREATE INDEX CONCURRENTLY i ON t (a);")
    assert outside("SELECT 1;\nVACUUM ANALYZE t;")
    assert outside("SELECT E'it\\'s';\nDROP INDEX CONCURRENTLY i;")
    # The engine's own reader decides, so what it knows the importer knows (a regex lexer missed these).
    assert outside("CREATE TABLESPACE fast LOCATION '/ssd';")
    assert outside("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p;")
    assert outside("REINDEX INDEX CONCURRENTLY i;")


def test_sql_the_server_cannot_parse_is_refused_at_import_naming_the_file_and_line():
    with pytest.raises(UserError, match=r"x\.sql line 2 does not parse as PostgreSQL SQL"):
        must_run_outside_transaction("SELECT 1;\nCREATE TABLE (;", "x.sql")


def test_dbmate_transaction_false_is_read_from_the_up_marker(tmp_path: Path):
    (tmp_path / "1_a.sql").write_text("-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n")
    (tmp_path / "2_b.sql").write_text("-- migrate:up\nCREATE INDEX j ON t (b);\n-- migrate:down\nDROP INDEX j;\n")
    _, history = read_history(tmp_path)
    assert [m.transactional for m in history] == [False, True]
    assert history[0].down is None and history[1].down == "DROP INDEX j;\n"


def test_flyway_script_config_file_and_inline_setting_turn_transactions_off(tmp_path: Path):
    (tmp_path / "V1__a.sql").write_text("ALTER TYPE e ADD VALUE 'x';\n")
    (tmp_path / "V1__a.sql.conf").write_text("# set by hand\nexecuteInTransaction=false\n")
    (tmp_path / "V2__b.sql").write_text("-- flyway:executeInTransaction=false\nSELECT 1;\n")
    (tmp_path / "V3__c.sql").write_text("SELECT 1;\n")
    _, history = read_history(tmp_path, "flyway")
    assert [m.transactional for m in history] == [False, False, True]


def test_node_pg_migrate_markers_are_case_insensitive_and_the_down_is_optional(tmp_path: Path):
    (tmp_path / "1700000000000_first.sql").write_text("-- up migration\nSELECT 1;\n-- DOWN MIGRATION\nSELECT 2;\n")
    (tmp_path / "1700000001000_second-one.sql").write_text("-- Up Migration\nSELECT 3;\n")
    _, history = read_history(tmp_path)
    assert [(m.version, m.up, m.down) for m in history] == [
        ("1700000000000_first", "SELECT 1;\n", "SELECT 2;\n"),
        ("1700000001000_second-one", "SELECT 3;\n", None),
    ]


def test_names_become_lower_case_identifiers_of_at_most_60_characters():
    assert migration_name("create-users") == "create_users"
    assert migration_name("Add Index (Users.Email)") == "add_index_users_email"
    assert migration_name("2nd try") == "m_2nd_try"
    assert migration_name("") == migration_name("---") == "migration"
    long = migration_name("x" * 59 + "_y_and_more")
    assert len(long) <= 60 and long == "x" * 59


def _project(tmp_path: Path) -> Path:
    """A copy of the project (no database needed: import only writes files)."""
    root = tmp_path / "project"
    root.mkdir()
    return copy_project(root, FIXTURE_PROJECT)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "dbmigrate", *args], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )


def _write(tmp_path: Path, tool: str, existing: list[str]) -> list:
    folder = tmp_path / "orion" / "piccolo_migrations"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [(migration_id, folder / f"orion_{migration_id}.py") for migration_id in existing]
    for migration_id, path in paths:
        path.write_text(f'ID = "{migration_id}"\n')
    _, history = read_history(HISTORIES / tool)
    planned = plan(folder, "orion", paths, tool, history)
    write(planned)
    return planned


@pytest.mark.parametrize("tool", FORMATS)
def test_imported_migrations_number_after_the_existing_ones_in_source_order(tmp_path: Path, tool: str):
    planned = _write(tmp_path, tool, ["001_initial_schema", "002_audit_log_append_only"])
    ids = [item.migration_id for item in planned]
    assert ids[0] == "003_create_stock_status_enum" and ids[-1] == "038_discontinue_empty_items"
    assert ids == sorted(ids) and len(set(ids)) == STEP_COUNT
    folder = tmp_path / "orion" / "piccolo_migrations"
    assert (folder / "orion_003_create_stock_status_enum.up.sql").read_text() == planned[0].source.up


def test_generated_file_follows_the_sql_files_format(tmp_path: Path):
    planned = _write(tmp_path, "flyway", ["001_initial_schema"])
    folder = tmp_path / "orion" / "piccolo_migrations"
    text = (folder / "orion_007_index_items_by_warehouse.py").read_text()
    assert text == (
        '"""Imported from flyway V6__index_items_by_warehouse.sql"""\n\n'
        "from dbmigrate.sql import SQLMigration\n\n"
        'ID = "007_index_items_by_warehouse"\n'
        'VERSION = "1.38.0"\n'
        'DESCRIPTION = "Imported from flyway V6__index_items_by_warehouse.sql"\n'
        'SOURCE_TOOL = "flyway"\n'
        'SOURCE_VERSION = "6"\n\n\n'
        "async def forwards():\n"
        '    manager = SQLMigration(migration_id=ID, app_name="orion", description=DESCRIPTION, '
        "wrap_in_transaction=False)\n"
        "    return manager.sql_files(__file__)\n"
    )
    assert "wrap_in_transaction" not in (folder / "orion_002_create_stock_status_enum.py").read_text()
    assert (folder / "orion_007_index_items_by_warehouse.down.sql").is_file()
    # The empty down: irreversible, no down file. Empty up and down: an explicit no-op.
    assert not (folder / "orion_011_add_discontinued_status.down.sql").exists()
    assert not (folder / "orion_014_backfill_weights.down.sql").exists()
    assert (folder / "orion_015_reserved_number.down.sql").read_text() == NOTHING_TO_UNDO
    assert "sql_files" not in (folder / "orion_015_reserved_number.py").read_text()  # no statement to run
    for item in planned:
        ast.parse(item.files[next(iter(item.files))])


def test_generated_files_pass_make_lint_as_written(tmp_path: Path):
    root = _project(tmp_path)
    for tool in FORMATS:
        assert _cli(root, "import", "marketdata", "--from", str(HISTORIES / tool)).returncode == 0
    shutil.copy(ROOT / "pyproject.toml", root)  # the project's ruff settings, as `make lint` uses them
    folder = root / "marketdata" / "piccolo_migrations"
    ruff = [sys.executable, "-m", "ruff"]
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run([*ruff, *check, str(folder)], cwd=root, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_import_command_writes_the_files_and_says_what_it_did(tmp_path: Path):
    root = _project(tmp_path)
    result = _cli(root, "import", "rfq", "--from", str(HISTORIES / "dbmate"))
    assert result.returncode == 0, result.stderr
    # How many exemptions depends on .squawk.toml's rules; the rest is fixed.
    assert re.fullmatch(
        r"rfq: imported 36 dbmate migration\(s\) as 003_create_stock_status_enum \.\. 038_discontinue_empty_items "
        r"into rfq/piccolo_migrations \(2 run outside a transaction; 2 cannot be rolled back; "
        r"\d+ exempt what squawk finds in their SQL from db-verify's lint\)",
        result.stdout.strip(),
    ), result.stdout
    assert len(list((root / "rfq" / "piccolo_migrations").glob("rfq_0[0-9][0-9]_*.py"))) == 38


def _one_line_error(result: subprocess.CompletedProcess, code: int = 1) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_importing_the_same_history_twice_is_refused_and_writes_nothing(tmp_path: Path):
    root = _project(tmp_path)
    assert _cli(root, "import", "orion", "--from", str(HISTORIES / "golang-migrate")).returncode == 0
    before = sorted((root / "orion" / "piccolo_migrations").iterdir())
    error = _one_line_error(_cli(root, "import", "orion", "--from", str(HISTORIES / "golang-migrate")))
    assert "000001_create_stock_status_enum.up.sql" in error and "imported already" in error
    assert sorted((root / "orion" / "piccolo_migrations").iterdir()) == before


def test_a_file_in_the_way_is_never_written_over(tmp_path: Path):
    root = _project(tmp_path)
    folder = root / "orion" / "piccolo_migrations"
    squatter = folder / "orion_003_create_stock_status_enum.up.sql"
    squatter.write_text("-- mine\n")
    error = _one_line_error(_cli(root, "import", "orion", "--from", str(HISTORIES / "dbmate")))
    assert "orion_003_create_stock_status_enum.up.sql exists already" in error
    assert squatter.read_text() == "-- mine\n"
    assert not (folder / "orion_003_create_stock_status_enum.py").exists()


BAD_FOLDERS = {
    "missing folder": ({}, "does not exist"),
    "empty folder": ({"README.md": "notes"}, "no migrations of a known format"),
    "two formats": ({"1_a.up.sql": "SELECT 1;", "V2__b.sql": "SELECT 2;"}, "looks like several formats"),
    "dbmate versions twice": (
        {"1_a.sql": "-- migrate:up\nSELECT 1;", "1_b.sql": "-- migrate:up\nSELECT 2;"},
        "the same dbmate version 1",
    ),
    "dbmate without up": ({"1_a.sql": "-- migrate:up\nSELECT 1;", "2_b.sql": "SELECT 2;"}, "no `-- migrate:up`"),
    "dbmate unknown option": ({"1_a.sql": "-- migrate:up transaction:maybe\nSELECT 1;"}, "unknown dbmate option"),
    "golang down without up": ({"1_a.up.sql": "SELECT 1;", "2_b.down.sql": "SELECT 2;"}, "no matching .up.sql"),
    "golang stray file": ({"1_a.up.sql": "SELECT 1;", "notes.sql": "SELECT 2;"}, "not a golang-migrate migration"),
    "flyway same version": ({"V1__a.sql": "SELECT 1;", "V1.0__b.sql": "SELECT 2;"}, "the same Flyway version"),
    "flyway repeatable": ({"V1__a.sql": "SELECT 1;", "R__views.sql": "SELECT 2;"}, "repeatable Flyway migration"),
    "flyway placeholder": ({"V1__a.sql": "CREATE TABLE ${schema}.t (a int);"}, "placeholder ${schema}"),
    "flyway undo alone": ({"V1__a.sql": "SELECT 1;", "U2__b.sql": "SELECT 2;"}, "has no V file"),
    "flyway callback": ({"V1__a.sql": "SELECT 1;", "afterMigrate.sql": "SELECT 2;"}, "not a flyway migration"),
    "node javascript": ({"1700000000000_a.js": "exports.up = () => {}", "1700000001000_b.sql": ""}, "JavaScript"),
    "not utf-8": ({"1_a.up.sql": b"SELECT '\xff';"}, "not UTF-8"),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_bad_source_folders_are_refused_in_one_line(tmp_path: Path, case: str):
    files, expected = BAD_FOLDERS[case]
    folder = tmp_path / "history"
    if case != "missing folder":
        folder.mkdir()
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    fmt = "node-pg-migrate" if case == "node javascript" else None
    with pytest.raises(UserError) as raised:
        read_history(folder, fmt)
    message = str(raised.value)
    assert expected in message and "\n" not in message


def test_bad_command_lines_are_refused_in_one_line(tmp_path: Path):
    root = _project(tmp_path)
    history = str(HISTORIES / "dbmate")
    assert "unknown format 'liquibase'" in _one_line_error(
        _cli(root, "import", "orion", "--from", history, "--format", "liquibase"), 2
    )
    assert "import acts on one database" in _one_line_error(_cli(root, "import", "all", "--from", history), 2)
    assert "import needs FROM (--from)" in _one_line_error(_cli(root, "import", "orion"), 2)
    assert "does not exist" in _one_line_error(_cli(root, "import", "orion", "--from", str(tmp_path / "nope")), 2)
    assert "unknown database" in _one_line_error(_cli(root, "import", "shop", "--from", history), 2)
    assert "is not a golang-migrate migration" in _one_line_error(
        _cli(root, "import", "orion", "--from", history, "--format", "golang-migrate")
    )


def test_a_long_source_name_still_gives_a_lint_clean_file_that_adoption_can_match(tmp_path: Path):
    history = tmp_path / "history"
    history.mkdir()
    long_name = "1700000000000_" + "add-a-rather-long-column-name-" * 5 + 'with "quotes"'
    (history / f"{long_name}.sql").write_text("-- Up Migration\nSELECT 1;\n")
    folder = tmp_path / "app" / "piccolo_migrations"
    folder.mkdir(parents=True)
    _, source = read_history(history)
    [item] = plan(folder, "app", [], "node-pg-migrate", source)
    write([item])
    py = next(path for path in item.files if path.suffix == ".py")
    assert source_of(py) == ("node-pg-migrate", long_name)
    assert len(item.migration_id) <= 64
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run([sys.executable, "-m", "ruff", *check, str(py)], cwd=tmp_path, capture_output=True)
        assert result.returncode == 0, result.stdout
