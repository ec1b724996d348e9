"""An SQLMigration is a Piccolo MigrationManager only where Piccolo asks for one (no server needed).

Loading and applying SQL migrations must not import Piccolo's migration machinery (about 160 ms of
every run from empty); Piccolo's own commands, which accept only MigrationManagers, must still get one.
Each case runs in a fresh interpreter, so what another test imported cannot hide an import.
"""

from __future__ import annotations

from support import fresh_python

MANAGER_MODULE = "piccolo.apps.migrations.auto.migration_manager"


def test_loading_an_sql_migration_file_imports_no_piccolo_migration_machinery(tmp_path):
    folder = tmp_path / "rfq" / "piccolo_migrations"
    folder.mkdir(parents=True)
    (folder / "rfq_001_x.py").write_text(
        'from dbmigrate.sql import SQLMigration\n\nID = "001_x"\n\n\nasync def forwards():\n'
        '    return SQLMigration(migration_id=ID, app_name="rfq").sql("CREATE TABLE t (id int)", "DROP TABLE t")\n'
    )
    out = fresh_python(
        f"""
        import asyncio, sys
        from pathlib import Path
        from dbmigrate.core.config import DATABASES
        from dbmigrate.engine import files, loader
        (found,) = files.discover(Path({str(tmp_path)!r}), DATABASES["rfq"])
        loaded = asyncio.run(loader.load(found, Path({str(tmp_path)!r})))
        print(type(loaded).__name__, loaded.statements()[0].sql, {MANAGER_MODULE!r} in sys.modules)
        """
    )
    assert out == "SQLSteps CREATE TABLE t (id int) False"


def test_with_piccolos_commands_loaded_an_sql_migration_is_a_migration_manager_that_runs_its_own_sql():
    out = fresh_python(
        """
        from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager  # as Piccolo's CLI does
        from piccolo.apps.migrations.auto.migration_manager import MigrationManager
        from dbmigrate.sql import SQLMigration
        m = SQLMigration(migration_id="001_x", app_name="rfq").sql("SELECT 1", None)
        print(isinstance(m, MigrationManager), isinstance(m, SQLMigration), m.forwards_sql,
              type(m).run is SQLMigration.run, m.add_tables == [], m.wrap_in_transaction)
        """
    )
    assert out == "True True ['SELECT 1'] True True True"


def test_a_piccolo_operation_makes_a_plain_sql_migration_a_migration_manager_in_place_keeping_its_steps():
    out = fresh_python(
        f"""
        import sys
        from dbmigrate.sql import SQLMigration
        m = SQLMigration(migration_id="001_x", app_name="rfq", wrap_in_transaction=False).sql("SELECT 1", None)
        before = {MANAGER_MODULE!r} in sys.modules
        m.add_raw(lambda: None)
        from piccolo.apps.migrations.auto.migration_manager import MigrationManager
        print(before, isinstance(m, MigrationManager), m.migration_id, m.forwards_sql, len(m.raw),
              m.wrap_in_transaction)
        """
    )
    assert out == "False True 001_x ['SELECT 1'] 1 False"


def test_a_name_neither_has_is_an_attribute_error():
    out = fresh_python(
        """
        from dbmigrate.sql import SQLMigration
        m = SQLMigration(migration_id="001_x")
        try:
            m.no_such_operation
        except AttributeError as error:
            print("AttributeError", error)
        """
    )
    assert out == "AttributeError 'SQLMigration' object has no attribute 'no_such_operation'"
