"""Unit tests (no server): migration files are found and read as text, never imported; the checksum
covers the .py and its .sql siblings (line endings aside); two files with one ID, or a file with no
ID line, are refused naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dbmigrate.core.config import DATABASES
from dbmigrate.core.errors import UserError
from dbmigrate.engine.files import discover, implied_id

ORION = DATABASES["orion"]


def _folder(root: Path) -> Path:
    folder = root / "orion" / "piccolo_migrations"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    return folder


def test_ids_are_read_as_text_so_a_file_that_would_fail_to_import_is_still_found(tmp_path: Path):
    folder = _folder(tmp_path)
    (folder / "orion_001_a.py").write_text('raise SystemExit("imported!")\nID = "001_a"\n')
    (folder / "orion_002_b.py").write_text("ID: str = '002_b'\n")
    found = discover(tmp_path, ORION)
    assert [(m.id, m.path.name) for m in found] == [("001_a", "orion_001_a.py"), ("002_b", "orion_002_b.py")]


def test_the_checksum_is_the_sha256_of_the_file_with_unix_line_endings(tmp_path: Path):
    folder = _folder(tmp_path)
    (folder / "orion_001_a.py").write_bytes(b'ID = "001_a"\r\nX = 1\r\n')
    (migration,) = discover(tmp_path, ORION)
    assert migration.checksum == hashlib.sha256(b'ID = "001_a"\nX = 1\n').hexdigest()


def test_the_checksum_covers_sibling_sql_files_and_their_names(tmp_path: Path):
    folder = _folder(tmp_path)
    (folder / "orion_001_a.py").write_text('ID = "001_a"\n')
    alone = discover(tmp_path, ORION)[0].checksum
    (folder / "orion_001_a.up.sql").write_text("CREATE TABLE t (id int);\n")
    with_up = discover(tmp_path, ORION)[0].checksum
    (folder / "orion_001_a.up.sql").write_text("CREATE TABLE t (id bigint);\n")
    changed_up = discover(tmp_path, ORION)[0].checksum
    (folder / "orion_001_a.up.sql").rename(folder / "orion_001_a.down.sql")
    renamed = discover(tmp_path, ORION)[0].checksum
    assert len({alone, with_up, changed_up, renamed}) == 4


def test_two_files_with_one_id_are_refused_naming_both(tmp_path: Path):
    folder = _folder(tmp_path)
    (folder / "orion_001_a.py").write_text('ID = "001_a"\n')
    (folder / "orion_001_a_copy.py").write_text('ID = "001_a"\n')
    with pytest.raises(UserError, match=r"orion_001_a\.py and .*orion_001_a_copy\.py; renumber one"):
        discover(tmp_path, ORION)


def test_a_file_without_an_id_line_is_refused_with_the_line_to_add(tmp_path: Path):
    folder = _folder(tmp_path)
    (folder / "orion_007_add_x.py").write_text("# no ID here\n")
    with pytest.raises(UserError, match=r'orion_007_add_x\.py has no ID line: add ID = "007_add_x"'):
        discover(tmp_path, ORION)


def test_a_missing_migrations_folder_is_named(tmp_path: Path):
    with pytest.raises(UserError, match=r"orion/piccolo_migrations does not exist"):
        discover(tmp_path, ORION)


def test_the_id_a_file_name_implies_drops_the_app_prefix():
    assert implied_id(Path("orion_003_add_x.py"), "orion") == "003_add_x"
    assert implied_id(Path("003_add_x.py"), "orion") == "003_add_x"


def test_a_migration_is_shown_by_its_path_in_the_project_in_the_messages_about_it(tmp_path: Path):
    import asyncio

    from dbmigrate.engine import loader

    folder = _folder(tmp_path)
    # It fails as it is imported, so the loader keeps no module of it (the test below counts them).
    (folder / "orion_001_a.py").write_text('ID = "001_a"\n\nraise ValueError("no")\n')
    (found,) = discover(tmp_path, ORION)
    assert found.shown == "orion/piccolo_migrations/orion_001_a.py"
    with pytest.raises(UserError) as refused:
        asyncio.run(loader.load(found))
    assert str(refused.value).startswith("migration orion/piccolo_migrations/orion_001_a.py does not load: line 3: ")


def test_a_migration_runs_the_bytes_its_checksum_covers_even_when_its_files_change_after_the_scan(tmp_path: Path):
    import asyncio

    from dbmigrate.engine import loader

    folder = _folder(tmp_path)
    (folder / "orion_001_a.py").write_text(
        'from dbmigrate.sql import SQLMigration\nID = "001_a"\nNOTE = "scanned"\n\n\nasync def forwards():\n'
        '    return SQLMigration(migration_id=ID, app_name="orion").sql_files(__file__)\n'
    )
    (folder / "orion_001_a.up.sql").write_bytes(b"CREATE TABLE scanned (id int);\r\n")
    (folder / "orion_001_a.down.sql").write_text("DROP TABLE scanned;\n")
    (found,) = discover(tmp_path, ORION)
    expected = hashlib.sha256(
        b"\0".join(
            [
                (folder / "orion_001_a.py").read_bytes(),
                b"orion_001_a.up.sql\0CREATE TABLE scanned (id int);\n",
                b"orion_001_a.down.sql\0DROP TABLE scanned;\n",
            ]
        )
    ).hexdigest()
    assert found.checksum == expected
    # Edited between the scan and the load (a checkout in another terminal): the scanned text runs.
    (folder / "orion_001_a.py").write_text((folder / "orion_001_a.py").read_text().replace('"scanned"', '"edited"'))
    (folder / "orion_001_a.up.sql").write_text("CREATE TABLE edited (id int);\n")
    (folder / "orion_001_a.down.sql").unlink()
    loaded = asyncio.run(loader.load(found))
    assert [s.sql for s in loaded.statements()] == ["CREATE TABLE scanned (id int)"]
    assert [s.sql for s in loaded.statements(backwards=True)] == ["DROP TABLE scanned"]
    assert loaded.manager.steps[0].forwards.text == "CREATE TABLE scanned (id int);\n"  # CRLF read as text reads it
    import sys

    assert [m.NOTE for name, m in sys.modules.items() if name.startswith("dbmigrate_migrations.orion.")] == ["scanned"]
