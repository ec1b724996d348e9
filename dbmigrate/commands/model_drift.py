"""Model drift: the changes in an app's tables.py that no migration makes, named table by table and
column by column (what `make db-migrate-create AUTO=1` would write, said in words).

Piccolo's own machinery decides: the schema its migrations build up (SchemaSnapshot) against the
app's table classes (DiffableTable), the comparison auto-migrations use. Reading it imports Piccolo
and the app's migrations, so callers import this module only when they check drift (verify, and
status with CHECK=1).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from dbmigrate.commands.scaffold import column_defaults
from dbmigrate.engine.piccolo_engine import in_framework, piccolo_prints


async def model_changes(app: str) -> list[str]:
    """One line per change tables.py has and the migrations lack; [] when they match."""
    from piccolo.apps.migrations.auto.diffable_table import DiffableTable
    from piccolo.apps.migrations.auto.schema_differ import SchemaDiffer
    from piccolo.apps.migrations.auto.schema_snapshot import SchemaSnapshot
    from piccolo.apps.migrations.commands.new import AutoMigrationManager
    from piccolo.conf.apps import Finder

    with in_framework(), piccolo_prints():  # Piccolo's table of counts is noise here
        app_config = Finder().get_app_config(app_name=app)
        managers = await AutoMigrationManager(auto_input="n").get_migration_managers(app_config=app_config)
        snapshot = SchemaSnapshot(managers).get_snapshot()
        current = [
            DiffableTable(
                class_name=table.__name__,
                tablename=table._meta.tablename,
                columns=table._meta.non_default_columns,
                constraints=table._meta.constraints,
                schema=table._meta.schema,
            )
            for table in app_config.table_classes
        ]
        # Piccolo asks about renames on stdin; "n" reads them as a drop and an add.
        statements = SchemaDiffer(schema=current, schema_snapshot=snapshot, auto_input="n").get_alter_statements()
    lines = describe(current, snapshot)
    if not lines:  # a change our wording does not cover: say it in Piccolo's words
        lines = [s.split("(", 1)[0].replace("manager.", "") for s in chain(*[a.statements for a in statements])]
    return lines


def describe(current: list, snapshot: list) -> list[str]:
    """The differences of the current tables from the migrations' snapshot, in words."""
    before = {table.class_name: table for table in snapshot}
    lines: list[str] = []
    for table in current:
        old = before.pop(table.class_name, None)
        if old is None:
            names = ", ".join(column._meta.name for column in table.columns)
            lines.append(f"{table.tablename}: new table ({names})")
            continue
        delta = table - old
        lines += [
            f"{table.tablename}.{c.column_name}: new column {_column(c.column_class, c.params)}"
            for c in delta.add_columns
        ]
        lines += [f"{table.tablename}.{c.column_name}: dropped" for c in delta.drop_columns]
        lines += [f"{table.tablename}.{c.column_name}: {_altered(c)}" for c in delta.alter_columns]
        lines += [
            f"{table.tablename}: new constraint {c.constraint_name} ({c.constraint_class_name})"
            for c in delta.add_constraints
        ]
        lines += [f"{table.tablename}: constraint {c.constraint_name} dropped" for c in delta.drop_constraints]
    lines += [f"{table.tablename}: table dropped" for table in before.values()]
    return lines


def _column(column_class: type, params: dict[str, Any]) -> str:
    """`Varchar(length=50, null=True)`: the class and the parameters that differ from its defaults."""
    from piccolo.apps.migrations.auto.serialisation import serialise_params

    defaults = column_defaults(column_class.__name__)
    serialised = serialise_params(params).params
    shown = [
        f"{key}={value!r}"
        for key, value in serialised.items()
        if key not in ("db_column_name",) and repr(value) != defaults.get(key)
    ]
    return f"{column_class.__name__}({', '.join(shown)})"


def _altered(change) -> str:
    parts = []
    if change.old_column_class is not None and change.column_class is not change.old_column_class:
        parts.append(f"type {change.old_column_class.__name__} -> {change.column_class.__name__}")
    parts += [f"{key} {change.old_params.get(key)!r} -> {value!r}" for key, value in change.params.items()]
    return "changed: " + ", ".join(parts)
