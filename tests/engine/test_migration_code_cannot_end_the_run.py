"""A migration's own code cannot end the run (issue 16, class 7): `sys.exit(0)`, `sys.exit(3)` or
KeyboardInterrupt, at import, in forwards() or in a raw step while it runs, is one line on stderr
naming the file, a non-zero exit, and nothing of that migration applied."""

from __future__ import annotations

import pytest
from migration_files import write_python_migration, write_sql_migration
from support import Databases, migration_ids

ENDINGS = {
    "sys.exit(0)": "SystemExit(0)",
    "sys.exit(3)": "SystemExit(3)",
    "raise KeyboardInterrupt": "KeyboardInterrupt",
}


def one_line(result) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_hostile(project, where: str, ending: str):
    body = "return MigrationManager(migration_id=ID, app_name='orion')"
    if where == "forwards":
        body = f"import sys\n{ending}\n{body}"
    path = write_python_migration(project, "orion", "906_hostile", body)
    if where == "import":
        path.write_text(path.read_text().replace('ID = "906_hostile"', f'import sys\n\n{ending}\nID = "906_hostile"'))
    return path


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("where", ["import", "forwards"])
def test_ending_the_run_while_loading_names_the_file_and_applies_nothing(project, dbs: Databases, where, ending):
    write_sql_migration(project, "orion", "905_before", "CREATE TABLE zz_before (id int)", "DROP TABLE zz_before")
    write_hostile(project, where, ending)
    line = one_line(dbs.cli("migrate", "orion", expect=1))
    assert "orion/piccolo_migrations/orion_906_hostile.py does not load" in line, line
    assert ENDINGS[ending].split("(")[0] in line and "nothing was applied" in line
    assert dbs.applied("orion") == [] and dbs.tables("orion") == set()


@pytest.mark.parametrize("ending", ["sys.exit(0)", "raise KeyboardInterrupt"])
def test_ending_the_run_from_a_raw_step_rolls_that_migration_back_and_names_it(project, dbs: Databases, ending):
    write_python_migration(
        project,
        "orion",
        "906_hostile",
        f"""
manager = MigrationManager(migration_id=ID, app_name="orion")

async def step():
    import sys
    await engine_finder().run_ddl("CREATE TABLE zz_half (id int)")
    {ending}

manager.add_raw(step)
manager.add_raw_backwards(lambda: None)
return manager
""",
    )
    line = one_line(dbs.cli("migrate", "orion", expect=1))
    assert "applying 906_hostile failed and was rolled back" in line and ENDINGS[ending].split("(")[0] in line
    assert dbs.applied("orion") == migration_ids("orion") and "zz_half" not in dbs.tables("orion")
