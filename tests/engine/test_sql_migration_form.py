"""An SQLMigration is a Piccolo MigrationManager only where Piccolo asks for one (no server needed).

Loading and applying SQL migrations must not import Piccolo's migration machinery (about 160 ms of
every run from empty); Piccolo's own commands, which accept only MigrationManagers, must still get one.
Each case runs in a fresh interpreter, so what another test imported cannot hide an import.
"""

from __future__ import annotations

import pytest
from support import fresh_python

MANAGER_MODULE = "piccolo.apps.migrations.auto.migration_manager"


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


AUTO_WRITTEN_FORWARDS = """
from piccolo.columns.column_types import Integer
from dbmigrate.sql import SQLMigration

ID = "001_x"


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="rfq").sql("CREATE TABLE t (id int)", "DROP TABLE t")
    manager.add_table(class_name="T", tablename="t", schema=None, columns=None)
    manager.add_column(
        table_class_name="T", tablename="t", column_name="id", db_column_name="id",
        column_class_name="Integer", column_class=Integer, params={"null": True}, schema=None,
    )
    return manager
"""


PLAIN_FORWARDS = (
    'from dbmigrate.sql import SQLMigration\n\nID = "001_x"\n\n\nasync def forwards():\n'
    '    return SQLMigration(migration_id=ID, app_name="rfq").sql("CREATE TABLE t (id int)", "DROP TABLE t")\n'
)


# The second file is what `piccolo migrations new --auto` writes into forwards() (add_table,
# add_column): applying the migration runs only its SQL, so describing the snapshot must not cost
# Piccolo's machinery either.
@pytest.mark.parametrize(
    "source", [PLAIN_FORWARDS, AUTO_WRITTEN_FORWARDS], ids=["sql-only", "with-snapshot-operations"]
)
def test_loading_an_sql_migration_file_imports_no_piccolo_migration_machinery(tmp_path, source):
    folder = tmp_path / "rfq" / "piccolo_migrations"
    folder.mkdir(parents=True)
    (folder / "rfq_001_x.py").write_text(source)
    out = fresh_python(
        f"""
        import asyncio, sys
        from pathlib import Path
        from dbmigrate.core.config import DATABASES
        from dbmigrate.engine import files, loader
        (found,) = files.discover(Path({str(tmp_path)!r}), DATABASES["rfq"])
        loaded = asyncio.run(loader.load(found))
        print(type(loaded).__name__, loaded.statements()[0].sql, {MANAGER_MODULE!r} in sys.modules)
        """
    )
    assert out == "SQLSteps CREATE TABLE t (id int) False"


def test_snapshot_operations_kept_before_piccolos_form_is_taken_are_all_in_it():
    # Kept calls are replayed when the object becomes a MigrationManager: Piccolo's own fields then
    # hold exactly what the same calls make on a MigrationManager created as one (the expected value).
    calls = """
        from piccolo.columns.column_types import Integer
        m.add_table(class_name="T", tablename="t", schema=None, columns=None)
        m.add_column(table_class_name="T", tablename="t", column_name="id", db_column_name="id",
                     column_class_name="Integer", column_class=Integer, params={"null": True}, schema=None)
        m.rename_table(old_class_name="T", old_tablename="t", new_class_name="U", new_tablename="u")
    """
    shown = (
        "[t.class_name for t in m.add_tables], [c.column._meta.name for c in m.add_columns.add_columns], "
        "[r.new_tablename for r in m.rename_tables]"
    )
    kept = fresh_python(
        f"""
        import sys
        from dbmigrate.sql import SQLMigration
        m = SQLMigration(migration_id="001_x", app_name="rfq").sql("SELECT 1", None)
        {calls.strip()}
        before = {MANAGER_MODULE!r} in sys.modules
        print(before, m.forwards_sql, {shown})
        """
    )
    as_piccolo = fresh_python(
        f"""
        from piccolo.apps.migrations.auto.migration_manager import MigrationManager
        m = MigrationManager(migration_id="001_x", app_name="rfq")
        {calls.strip()}
        print({shown})
        """
    )
    assert kept == f"False ['SELECT 1'] {as_piccolo}"
    assert "'T'" in kept and "'id'" in kept and "'u'" in kept


def test_the_kept_operations_are_piccolos_own():
    # A name Piccolo renamed or dropped would be kept and never checked: each must be MigrationManager's.
    out = fresh_python(
        """
        from piccolo.apps.migrations.auto.migration_manager import MigrationManager
        from dbmigrate.engine.sql_migration import SNAPSHOT_OPERATIONS
        print(sorted(n for n in SNAPSHOT_OPERATIONS if not callable(getattr(MigrationManager, n, None))))
        """
    )
    assert out == "[]"


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
