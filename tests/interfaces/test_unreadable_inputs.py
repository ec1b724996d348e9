"""Inputs of the wrong encoding, kind or size: a file that is not UTF-8, a folder or a device where
a file belongs, a data folder that cannot be one, a name PostgreSQL would cut short, a value
holding a line break or pasted in whole. Each gets one line on stderr naming it and what to do,
never "unexpected <Exception>", and changes nothing."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from migration_files import write_sql_migration
from support import FIXTURE_PROJECT, Databases, copy_project

from dbmigrate.core.urls import with_database

MIGRATIONS = Path("orion") / "piccolo_migrations"


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "unexpected" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


SQL_FROM_FILES = """from dbmigrate.sql import SQLMigration

ID = "003_latin"
VERSION = "1.38.0"
DESCRIPTION = ""


async def forwards():
    return SQLMigration(migration_id=ID, app_name="orion", description="").sql_files(__file__)
"""


def _latin1_python(project: Path, coding: bool) -> str:
    path = write_sql_migration(project, "orion", "003_latin", "SELECT 'café'", "SELECT 1")
    text = ("# -*- coding: latin-1 -*-\n" if coding else "") + path.read_text()
    path.write_bytes(text.encode("latin-1"))
    line = text[: text.index("é")].count("\n") + 1
    return f"{MIGRATIONS}/orion_003_latin.py is not UTF-8 text (byte 0xe9 on line {line})"


def _latin1_sibling(project: Path, suffix: str) -> str:
    (project / MIGRATIONS / "orion_003_latin.py").write_text(SQL_FROM_FILES)
    for other in (".up.sql", ".down.sql"):
        sql = "SELECT 1;\nSELECT 'café';\n" if other == suffix else "SELECT 1;\n"
        (project / MIGRATIONS / f"orion_003_latin{other}").write_bytes(sql.encode("latin-1"))
    return f"{MIGRATIONS}/orion_003_latin{suffix} is not UTF-8 text (byte 0xe9 on line 2)"


@pytest.mark.parametrize(
    "make",
    [
        lambda project: _latin1_python(project, coding=True),
        lambda project: _latin1_python(project, coding=False),
        lambda project: _latin1_sibling(project, ".up.sql"),
        lambda project: _latin1_sibling(project, ".down.sql"),
    ],
    ids=["py declaring latin-1", "py", "up.sql", "down.sql"],
)
@pytest.mark.parametrize("command", [("migrate", "orion"), ("migrate", "orion", "--dry-run"), ("verify", "orion")])
def test_a_migration_file_that_is_not_utf8_is_refused_naming_its_line(project, dbs: Databases, make, command):
    expected = make(project)
    result = dbs.cli(*command, expect=1)
    if command[0] == "verify":  # verify says each problem on a line of its own, then counts them
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
        assert result.stderr.splitlines() == [
            f"orion: FAIL migrate up, down, up: {expected}: save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`",
            "error: verify found 1 problem(s), each shown above (orion: migrate up, down, up)",
        ]
    else:
        one_line_error(result, expected, "save it as UTF-8")
    assert dbs.applied("orion") == []  # every migration is loaded before the first runs


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        ("development/orion/003_latin.sql", "INSERT INTO tenants (name) VALUES ('Café');", "byte 0xe9 on line 1"),
        ("reference/marketdata/003_venues.csv", "id,name\n1,Nëw York\n", "byte 0xeb on line 2"),
    ],
)
def test_a_seed_file_that_is_not_utf8_is_refused_and_nothing_is_loaded(dbs: Databases, path, content, expected):
    dbs.cli("migrate", "all")
    (dbs.cwd / "seeds" / path).write_bytes(content.encode("latin-1"))
    database = path.split("/")[1]
    one_line_error(dbs.cli("seed", database, expect=1), f"seeds/{path} is not UTF-8 text ({expected})")
    table = "tenants" if database == "orion" else "venues"
    assert dbs.sql(database, f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0  # one transaction: nothing


def test_a_seed_csv_starting_with_a_byte_order_mark_loads_every_row(dbs: Databases):
    dbs.cli("migrate", "marketdata")
    venues = dbs.cwd / "seeds" / "reference" / "marketdata" / "001_venues.csv"
    with venues.open(newline="") as handle:
        rows = len(list(csv.reader(handle))) - 1  # the file's own count, header aside
    venues.write_bytes(b"\xef\xbb\xbf" + venues.read_bytes())
    result = dbs.cli("seed", "marketdata")
    assert f"seeded seeds/reference/marketdata/001_venues.csv (+{rows} rows" in result.stdout
    assert dbs.sql("marketdata", "SELECT count(*) AS n FROM venues")[0]["n"] == rows


@pytest.mark.parametrize("name", ["add_x\n", "add_x\r", "add\nx", "add_x\n\n", "add_x ", "\nadd_x"])
def test_a_migration_name_with_a_line_break_is_refused_and_writes_no_file(project, dbs: Databases, name):
    before = sorted(os.listdir(project / MIGRATIONS))
    line = one_line_error(dbs.cli("create", name, "orion", expect=2), "is not usable")
    assert "\\n" in line or "\\r" in line or name.endswith(" ")
    assert sorted(os.listdir(project / MIGRATIONS)) == before


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (("status", "--targets", "fleet\nfile.txt"), {}, "TARGETS file fleet\\nfile.txt does not exist"),
        (("import", "orion", "--from", "old\nmigrations"), {}, "old\\nmigrations does not exist"),
        (("status", "or\nion"), {}, "unknown database 'or\\nion'"),
        (("migrate", "orion", "--to", "00\n2"), {}, "TO='00\\n2' holds a line break"),
        (("status",), {"ORION_ENV": "dev\nx"}, "unknown ORION_ENV 'dev\\nx'"),
        (("migrate", "orion"), {"ORION_LOCK_TIMEOUT": "5\ns"}, "ORION_LOCK_TIMEOUT='5\\ns' is not a duration"),
    ],
)
def test_a_value_holding_a_line_break_is_shown_on_one_line(dbs: Databases, args, env, shown):
    dbs.extra_env.update(env)
    result = dbs.cli(*args, expect=1 if env else 2)
    one_line_error(result, shown)


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (("migrate", "orion", "--to", "9" * 5000), {}, "is not a migration number (5000 digits)"),
        (("down", "orion", "--steps", "9" * 5000), {}, "invalid int value"),
        (("migrate", "orion"), {"ORION_LOCK_RETRIES": "9" * 5000}, "ORION_LOCK_RETRIES="),
        (("migrate", "orion"), {"ORION_LOCK_RETRIES": "٣"}, "is not a whole number from 0 to 100"),
        (("migrate", "orion"), {"ORION_LOCK_TIMEOUT": "٣s"}, "ORION_LOCK_TIMEOUT='٣s' is not a duration"),
    ],
)
def test_a_value_pasted_in_whole_or_in_other_digits_is_refused_in_one_short_line(dbs: Databases, args, env, shown):
    dbs.extra_env.update(env)
    line = one_line_error(dbs.cli(*args, expect=1 if env else 2), shown)
    assert len(line) < 400


@pytest.mark.parametrize("name", ["d" * 64, "d" * 70, "é" * 32])
@pytest.mark.parametrize("command", ["create-databases", "migrate", "status", "drop-databases"])
def test_a_database_name_longer_than_postgresql_keeps_is_refused(dbs: Databases, name: str, command: str):
    dbs.extra_env["DATABASE_URL"] = with_database(dbs.url("orion"), name)
    line = one_line_error(dbs.cli(command, "orion", expect=1), "DATABASE_URL names a database of")
    assert "PostgreSQL keeps only the first 63 bytes of a name" in line
    cut = name.encode()[:63].decode(errors="ignore")
    assert not dbs.sql("orion", "SELECT 1 FROM pg_database WHERE datname LIKE $1", cut[:60] + "%")


def test_a_database_name_of_63_bytes_is_used_as_it_is(dbs: Databases):
    name = f"{dbs.prefix}_" + "d" * (63 - len(dbs.prefix) - 1)
    dbs.extra_env["DATABASE_URL"] = with_database(dbs.url("orion"), name)
    try:
        assert dbs.cli("create-databases", "orion").stdout.strip() == f"created {name}"
        dbs.cli("migrate", "orion")
        rows = dbs.sql("orion", "SELECT datname FROM pg_database WHERE datname = $1", name)
        assert [r["datname"] for r in rows] == [name]
    finally:
        dbs.sql("orion", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def embedded_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the fixture project with no database URL: the embedded server's settings apply."""
    project = copy_project(tmp_path / "project", FIXTURE_PROJECT)
    unset = ("ORION_ENV", "ORION_PGDATA", "ORION_PROJECT_ROOT")  # the defaults are what these tests prove
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k not in unset}
    return project, env


def _run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dbmigrate", *args], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("kind", ["ORION_PGDATA a file", ".pgdata a file", "a dangling link", "unwritable"])
def test_a_data_folder_that_cannot_be_one_is_named_and_no_server_starts(embedded_project, tmp_path, kind):
    project, env = embedded_project
    if kind == "ORION_PGDATA a file":
        (tmp_path / "afile").write_text("x")
        env["ORION_PGDATA"] = str(tmp_path / "afile")
        expected = f"ORION_PGDATA={tmp_path / 'afile'} (from the environment): {tmp_path / 'afile'}: it is a file"
    elif kind == ".pgdata a file":
        (project / ".pgdata").write_text("x")
        expected = f"{project / '.pgdata'} (the default, .pgdata in the project)"
    elif kind == "a dangling link":
        (project / ".pgdata").symlink_to(tmp_path / "gone")
        expected = f"{project / '.pgdata'} (the default, .pgdata in the project)"
    else:  # no user may make a folder in /sys: as a read-only .pgdata is for its owner
        env["ORION_PGDATA"] = "/sys/orion-pgdata"
        expected = "ORION_PGDATA=/sys/orion-pgdata (from the environment): /sys/orion-pgdata"
    result = _run(project, env, "status", "orion")
    lines = [line for line in result.stderr.splitlines() if not line.startswith("initialising and starting")]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the embedded PostgreSQL server cannot keep its data in "), lines[0]
    assert expected in lines[0] and "point ORION_PGDATA at a folder you can write" in lines[0]
    assert "unexpected" not in result.stderr


@pytest.mark.parametrize("kind", ["folder", "dangling link"])
def test_a_migration_file_that_cannot_be_read_is_named(project, dbs: Databases, tmp_path, kind):
    path = project / MIGRATIONS / "orion_003_odd.py"
    if kind == "folder":
        (tmp_path / "a_folder").mkdir()
        path.symlink_to(tmp_path / "a_folder")
    else:
        path.symlink_to(tmp_path / "gone")
    reason = "it is a folder" if kind == "folder" else "No such file or directory"
    one_line_error(dbs.cli("migrate", "orion", expect=1), f"{MIGRATIONS}/orion_003_odd.py cannot be read ({reason})")
    assert dbs.applied("orion") == []


def test_a_seed_folder_named_like_a_seed_file_is_not_one(dbs: Databases):
    dbs.cli("migrate", "marketdata")
    (dbs.cwd / "seeds" / "reference" / "marketdata" / "003_odd.csv").mkdir()
    result = dbs.cli("seed", "marketdata")
    assert "003_odd" not in result.stdout + result.stderr
    assert "seeded seeds/reference/marketdata/002_instruments.csv" in result.stdout


def test_an_env_file_that_is_not_utf8_is_refused_naming_its_line(dbs: Databases):
    (dbs.cwd / ".env").write_bytes("# Orion\nORION_LOCK_TIMEOUT=5s\nDESCRIPTION=café\n".encode("latin-1"))
    one_line_error(dbs.cli("status", "orion", expect=1), ".env is not UTF-8 text (byte 0xe9 on line 3)")


def test_an_env_file_starting_with_a_byte_order_mark_is_read(dbs: Databases):
    (dbs.cwd / ".env").write_bytes(b"\xef\xbb\xbfORION_LOCK_RETRIES=many\n")  # its first key counts
    one_line_error(dbs.cli("migrate", "orion", expect=1), "ORION_LOCK_RETRIES='many' is not a whole number")


def test_a_schema_folder_that_is_a_file_is_named_by_schema_dump(dbs: Databases):
    schema = dbs.cwd / "schema"
    for child in schema.iterdir():
        child.unlink()
    schema.rmdir()
    schema.write_text("not a folder")
    one_line_error(dbs.cli("schema-dump", "orion", expect=1), "cannot write schema/orion.sql", "must be a folder")


def test_a_squawk_config_that_does_not_parse_is_named_by_verify(project, dbs: Databases):
    path = write_sql_migration(project, "orion", "003_exempt", "CREATE TABLE t (id int)", "DROP TABLE t")
    path.write_text(path.read_text() + '\nSQUAWK_EXEMPT = {"prefer-robust-stmts": "a reason"}\n')
    (project / ".squawk.toml").write_text("excluded_rules = [\n")
    result = dbs.cli("verify", "orion", expect=1)
    assert ".squawk.toml does not parse" in result.stderr and "unexpected" not in result.stderr


def test_a_postgresql_cache_that_is_a_file_is_named_and_nothing_is_downloaded(embedded_project, tmp_path):
    project, env = embedded_project
    (tmp_path / "cache").write_text("a file")
    env.update(ORION_PG_CACHE=str(tmp_path / "cache"), ORION_PGDATA=str(tmp_path / "pgdata"), ORION_PG_VERSION="18")
    result = _run(project, env, "status", "orion")
    lines = [line for line in result.stderr.splitlines() if not line.startswith("initialising and starting")]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0] == (
        f"error: the pinned PostgreSQL 18 cannot be installed in ORION_PG_CACHE={tmp_path / 'cache'} "
        f"({tmp_path / 'cache'}: File exists): point ORION_PG_CACHE at a folder you can write"
    )
    assert (tmp_path / "cache").read_text() == "a file"
