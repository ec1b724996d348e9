"""`down` never says "reverted" after running nothing or only part (issue 16, class 3):
reversibility is decided step by step; an imported migration keeps its source tool's meaning (a
dbmate migration with an empty up and a real down runs that down); an AUTO=1 column drop is
undone with the column's index, as verify's catalog comparison proves."""

from __future__ import annotations

import pytest
from support import Databases, migration_ids

TWO_STEPS = """
from dbmigrate.sql import NOTHING_TO_UNDO, SQLMigration

ID = "905_two_steps"


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="orion")
    manager.sql("CREATE TABLE zz_first (id int)", {first!s})
    manager.sql("CREATE TABLE zz_second (id int)", {second!s})
    return manager
"""


def write_two_steps(project, first: str, second: str) -> None:
    path = project / "orion" / "piccolo_migrations" / "orion_905_two_steps.py"
    path.write_text(TWO_STEPS.format(first=first, second=second))


@pytest.mark.parametrize(
    "first, second, empty_step",
    [
        ('"DROP TABLE zz_first"', '"-- to do: drop zz_second"', 2),
        ('"-- nothing yet"', '"DROP TABLE zz_second"', 1),
        ('"DROP TABLE zz_first"', "None", 2),
    ],
)
def test_a_step_without_an_undo_makes_down_refuse_even_when_another_step_has_sql(
    project, dbs: Databases, first, second, empty_step
):
    write_two_steps(project, first, second)
    dbs.cli("migrate", "orion")
    err = dbs.cli("down", "orion", expect=1).stderr
    assert "905_two_steps cannot be rolled back" in err and f"(step {empty_step} of 2)" in err, err
    assert "reverted" not in err
    assert {"zz_first", "zz_second"} <= dbs.tables("orion") and dbs.applied("orion")[-1] == "905_two_steps"


def test_a_step_that_says_nothing_to_undo_lets_down_run_the_other_steps(project, dbs: Databases):
    write_two_steps(project, '"DROP TABLE zz_first"', "NOTHING_TO_UNDO")
    dbs.cli("migrate", "orion")
    assert "reverted 905_two_steps" in dbs.cli("down", "orion").stdout
    tables = dbs.tables("orion")
    assert "zz_first" not in tables and "zz_second" in tables  # the step that said so left its table


def test_an_imported_dbmate_migration_with_an_empty_up_runs_its_down_on_rollback(project, dbs: Databases, tmp_path):
    source = tmp_path / "dbmate"
    source.mkdir()
    (source / "20240101000001_create_ledger.sql").write_text(
        "-- migrate:up\nCREATE TABLE zz_ledger (id int);\n\n-- migrate:down\nDROP TABLE zz_ledger;\n"
    )
    (source / "20240101000002_emptied_later.sql").write_text(
        "-- migrate:up\n-- (squashed into the first migration)\n\n-- migrate:down\nINSERT INTO zz_ledger VALUES (42);\n"
    )
    dbs.cli("import", "orion", "--from", str(source))
    dbs.cli("migrate", "orion")
    imported = [
        f"{len(migration_ids('orion')) + n:03d}_{name}" for n, name in ((1, "create_ledger"), (2, "emptied_later"))
    ]
    assert dbs.applied("orion")[-2:] == imported
    assert dbs.sql("orion", "SELECT count(*) AS n FROM zz_ledger")[0]["n"] == 0  # the up ran nothing
    assert f"reverted {imported[1]}" in dbs.cli("down", "orion").stdout
    assert [r["id"] for r in dbs.sql("orion", "SELECT id FROM zz_ledger")] == [42]  # dbmate would have run it


DESK = """

class Desk(Table, tablename="desks"):
    code = Varchar(length=20)
    name = Varchar(length=100, index=True)
"""


def test_an_auto_column_drop_is_undone_with_the_columns_index_as_verify_proves(project, dbs: Databases):
    tables = project / "rfq" / "tables.py"
    original = tables.read_text()
    tables.write_text(original + DESK)
    dbs.cli("create", "add_desks", "rfq", "--auto")
    tables.write_text(original + DESK.replace("    name = Varchar(length=100, index=True)\n", ""))
    dbs.cli("create", "drop_desk_name", "rfq", "--auto")
    folder = project / "rfq" / "piccolo_migrations"
    for name, rule in (("003_add_desks", "prefer-identity"), ("004_drop_desk_name", "ban-drop-column")):
        path = folder / f"rfq_{name}.py"
        path.write_text(path.read_text() + f'\nSQUAWK_EXEMPT = {{"{rule}": "a test of the rollback, not of lint"}}\n')
    dbs.cli("schema-dump", "rfq")
    out = dbs.cli("verify", "rfq", timeout=300).stdout
    assert "rfq: ok   migrate up, down, up: 4 migration(s) applied from empty; each rollback restores" in out
    dbs.cli("migrate", "rfq")
    dbs.cli("down", "rfq")
    indexes = {r["indexdef"] for r in dbs.sql("rfq", "SELECT indexdef FROM pg_indexes WHERE tablename = 'desks'")}
    assert any("(name)" in definition for definition in indexes), indexes
