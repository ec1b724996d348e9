"""Expand/contract helpers for migration files: change a live table while the old and the new
version of the application both run, through PgBouncer in transaction pooling.

Nothing here switches `search_path` or keeps session state (pgroll's and Reshape's versioned
views do, and break under transaction pooling): both versions use the one table, and a trigger
keeps an old and a new column in step both ways, so a write through either name is read under
the other. Each helper adds stages to a StagedMigration (engine/staged.py): every stage is a
short transaction of its own (under the migration's lock_timeout, retried), backfills go in
batches, and the Piccolo operations it adds only describe the change to Piccolo's schema
snapshot (as in any SQLMigration), so `tables.py` and the migrations stay in step.

    rename_column         pre-deploy: add the new column, sync trigger, backfill
    finish_rename_column  post-deploy: drop the trigger and the old column
    change_column_type    pre-deploy: a shadow column of the new type, sync trigger, backfill
    finish_change_column_type  post-deploy: drop the old column, the shadow takes its name
    add_not_null          CHECK (...) NOT VALID, VALIDATE, SET NOT NULL, drop the check
    add_foreign_key       ADD CONSTRAINT ... NOT VALID, then VALIDATE in a transaction of its own

Invariant: every statement a helper writes takes its strongest lock only briefly (adding or
dropping a column or trigger, SET NOT NULL once a validated check proves it): the long work,
backfills and validations, runs under locks that let reads and writes go on.
"""

from __future__ import annotations

import hashlib
from typing import Any

from piccolo.columns.column_types import ForeignKey

from dbmigrate.engine.sql_migration import NOTHING_TO_UNDO
from dbmigrate.engine.staged import StagedMigration
from dbmigrate.server.connection import quote_identifier

__all__ = [
    "add_foreign_key",
    "add_not_null",
    "change_column_type",
    "finish_change_column_type",
    "finish_rename_column",
    "rename_column",
    "sync_names",
]

MAX_NAME = 63  # PostgreSQL's identifiers


def _name(*parts: str) -> str:
    """`parts` joined by _, shortened with a hash of the whole when longer than PostgreSQL keeps."""
    name = "_".join(parts)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def _table(name: str) -> str:
    return ".".join(quote_identifier(part) for part in name.split("."))


def sync_names(table: str, old: str, new: str) -> str:
    """The name of the trigger (and of its function) that keeps `old` and `new` in step."""
    return _name(table.split(".")[-1], old, new, "sync")


# What the contract steps do on purpose, as squawk's rules name it (the migration's own
# SQUAWK_EXEMPT still wins).
_CONTRACT_EXEMPT = {
    "ban-drop-column": "the contract step of expand/contract: since the deploy no code uses the old column",
    "ban-drop-function": "drops the function of the sync trigger its expand step created",
    "renaming-column": "the shadow column takes the old one's name, which both versions use throughout",
}
_NOT_NULL_EXEMPT = {"ban-drop-constraint": "drops the temporary CHECK (... IS NOT NULL) once SET NOT NULL holds"}


def _staged(manager: Any, helper: str) -> StagedMigration:
    if not isinstance(manager, StagedMigration):
        raise TypeError(
            f"{helper} adds stages of their own transactions: make the manager a StagedMigration "
            "(from dbmigrate.batched import StagedMigration)"
        )
    return manager


COLUMN = "{column}"  # in `using` and `back`: the column the value comes from


def _over(expression: str, column: str, row: str = "") -> str:
    """`expression` with {column} standing for `column` (of the trigger's NEW row when `row`)."""
    return expression.replace(COLUMN, f"{row}{quote_identifier(column)}")


def sync_trigger_sql(table: str, old: str, new: str, to_new: str, to_old: str) -> str:
    """A BEFORE INSERT OR UPDATE trigger keeping `old` and `new` in step, with its function.

    `to_new` (over {column} = old) and `to_old` (over {column} = new) convert one column's value
    to the other's type. On INSERT the new column wins when it is given (not NULL), else it is
    filled from the old one, so either version may leave its column to the other's default; on
    UPDATE the column that changed is copied to the other (the new one when both did)."""
    o, n, t, f = (
        quote_identifier(old),
        quote_identifier(new),
        _table(table),
        quote_identifier(sync_names(table, old, new)),
    )
    new_value, old_value = _over(to_new, old, "NEW."), _over(to_old, new, "NEW.")
    return f"""CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $sync$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.{n} IS NULL THEN
            NEW.{n} := {new_value};
        ELSE
            NEW.{o} := {old_value};
        END IF;
    ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} THEN
        NEW.{o} := {old_value};
    ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} THEN
        NEW.{n} := {new_value};
    END IF;
    RETURN NEW;
END
$sync$;

CREATE TRIGGER {f} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {f}();
"""


def drop_sync_trigger_sql(table: str, old: str, new: str) -> str:
    f = quote_identifier(sync_names(table, old, new))
    return f"DROP TRIGGER {f} ON {_table(table)};\nDROP FUNCTION {f}();\n"


def _expand(
    manager: StagedMigration, table: str, old: str, new: str, new_type: str, to_new: str, to_old: str, batch_time
) -> None:
    t, n = _table(table), quote_identifier(new)
    manager.sql(
        forwards=f"ALTER TABLE {t} ADD COLUMN {n} {new_type};\n\n{sync_trigger_sql(table, old, new, to_new, to_old)}",
        backwards=f"{drop_sync_trigger_sql(table, old, new)}ALTER TABLE {t} DROP COLUMN {n};\n",
    )
    manager.batched_update(
        table=table,
        set=f"{n} = {_over(to_new, old)}",
        where=f"{n} IS DISTINCT FROM {_over(to_new, old)}",
        backwards=NOTHING_TO_UNDO,
        batch_time=batch_time,
    )


def rename_column(
    manager: StagedMigration,
    *,
    table: str,
    column: str,
    to: str,
    type: str,
    table_class: str,
    batch_time: str | float = "50ms",
) -> StagedMigration:
    """Pre-deploy (expand): add column `to` of SQL `type` beside `column`, keep the two in step
    both ways with a trigger, and backfill `to` in batches. Old code keeps using `column`, new
    code uses `to`; `finish_rename_column` in a post-deploy migration ends it. Piccolo's state:
    the column is renamed (`table_class` is its Table class's name in tables.py)."""
    manager = _staged(manager, "rename_column")
    _expand(manager, table, column, to, type, COLUMN, COLUMN, batch_time)
    manager.rename_column(
        table_class_name=table_class,
        tablename=table,
        old_column_name=column,
        new_column_name=to,
        old_db_column_name=column,
        new_db_column_name=to,
    )
    return manager


def _contract_stages(
    manager: StagedMigration, table: str, old: str, new: str, default: str | None, not_null: bool, rename: bool
) -> None:
    t, o, n = _table(table), quote_identifier(old), quote_identifier(new)
    final = quote_identifier(old) if rename else n
    statements = [drop_sync_trigger_sql(table, old, new).rstrip(), f"ALTER TABLE {t} DROP COLUMN {o};"]
    if rename:
        statements.append(f"ALTER TABLE {t} RENAME COLUMN {n} TO {o};")
    if default is not None:
        statements.append(f"ALTER TABLE {t} ALTER COLUMN {final} SET DEFAULT {default};")
    manager.sql(forwards="\n".join(statements) + "\n", backwards=None)
    manager.squawk_exempt.update({k: v for k, v in _CONTRACT_EXEMPT.items() if rename or k != "renaming-column"})
    if not_null:
        _not_null_stages(manager, table, old if rename else new)


def finish_rename_column(
    manager: StagedMigration,
    *,
    table: str,
    column: str,
    to: str,
    default: str | None = None,
    not_null: bool = False,
) -> StagedMigration:
    """Post-deploy (contract), once no old code runs: drop the sync trigger and `column`. Give
    `default` (an SQL expression) and `not_null` when `column` had them: `to` takes them here
    (NOT NULL without a long lock, as add_not_null). Indexes and constraints on `column` go with
    it: build them on `to` before (CREATE INDEX CONCURRENTLY, in a migration of its own).
    Piccolo's state already has the rename. Irreversible: the old column's data is gone."""
    _contract_stages(_staged(manager, "finish_rename_column"), table, column, to, default, not_null, rename=False)
    return manager


def shadow_name(column: str) -> str:
    return _name(column, "new")


def change_column_type(
    manager: StagedMigration,
    *,
    table: str,
    column: str,
    type: str,
    old_type: str,
    table_class: str,
    column_class: type,
    old_column_class: type,
    using: str | None = None,
    back: str | None = None,
    batch_time: str | float = "50ms",
) -> StagedMigration:
    """Pre-deploy (expand): a shadow column `<column>_new` of SQL `type`, kept in step with `column`
    both ways by a trigger (`using`, an SQL expression over {column}, converts a value to the new
    type, `back` to `old_type`; plain casts by default), and backfilled in batches. Both versions go on
    using `column`; `finish_change_column_type` (post-deploy) drops it and gives the shadow its name.
    Piccolo's state: the column's class becomes `column_class` (from `old_column_class`)."""
    manager = _staged(manager, "change_column_type")
    shadow = shadow_name(column)
    to_new, to_old = using or f"{COLUMN}::{type}", back or f"{COLUMN}::{old_type}"
    _expand(manager, table, column, shadow, type, to_new, to_old, batch_time)
    manager.alter_column(
        table_class_name=table_class,
        tablename=table,
        column_name=column,
        db_column_name=column,
        params={},
        old_params={},
        column_class=column_class,
        old_column_class=old_column_class,
    )
    return manager


def finish_change_column_type(
    manager: StagedMigration, *, table: str, column: str, default: str | None = None, not_null: bool = False
) -> StagedMigration:
    """Post-deploy (contract): drop the sync trigger and `column`, rename the shadow to `column`
    (one short ACCESS EXCLUSIVE transaction; the name the application uses never disappears),
    and give it `default` and NOT NULL when the old column had them. Indexes and constraints on
    the old column go with it: build them on the shadow column before. Irreversible."""
    manager = _staged(manager, "finish_change_column_type")
    _contract_stages(manager, table, column, shadow_name(column), default, not_null, rename=True)
    return manager


def _not_null_stages(manager: StagedMigration, table: str, column: str) -> None:
    t, c = _table(table), quote_identifier(column)
    check = quote_identifier(_name(table.split(".")[-1], column, "is_not_null"))
    manager.sql(
        forwards=f"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID;\n",
        backwards=f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check};\n",
    )
    manager.sql(forwards=f"ALTER TABLE {t} VALIDATE CONSTRAINT {check};\n", backwards=NOTHING_TO_UNDO)
    manager.sql(
        forwards=f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {check};\n",
        backwards=f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL;\n",
    )
    manager.squawk_exempt.update(_NOT_NULL_EXEMPT)


def add_not_null(manager: StagedMigration, *, table: str, column: str, table_class: str) -> StagedMigration:
    """Make `column` NOT NULL without holding an ACCESS EXCLUSIVE lock through a scan: a CHECK
    (column IS NOT NULL) NOT VALID (brief lock), VALIDATE in its own transaction (SHARE UPDATE
    EXCLUSIVE: reads and writes go on), then SET NOT NULL, which the validated check lets skip the
    scan (PostgreSQL 12+), and the check dropped. Every row must have a value first (backfill it
    in an earlier stage or migration). Piccolo's state: null=False."""
    _not_null_stages(_staged(manager, "add_not_null"), table, column)
    manager.alter_column(
        table_class_name=table_class,
        tablename=table,
        column_name=column,
        db_column_name=column,
        params={"null": False},
        old_params={"null": True},
    )
    return manager


def add_foreign_key(
    manager: StagedMigration,
    *,
    table: str,
    column: str,
    references: type,
    table_class: str,
    old_column_class: type,
    on_delete: Any = None,
    on_update: Any = None,
    name: str | None = None,
) -> StagedMigration:
    """Make `column` a foreign key to Piccolo Table class `references` (its primary key) without a
    long lock: ADD CONSTRAINT ... NOT VALID (a brief SHARE ROW EXCLUSIVE lock on both tables; new
    rows are checked from then on), then VALIDATE CONSTRAINT in a transaction of its own (SHARE
    UPDATE EXCLUSIVE: reads and writes go on while existing rows are checked). `on_delete` and
    `on_update` are Piccolo's OnDelete / OnUpdate (NO ACTION when not given). Piccolo's state: the
    column becomes a ForeignKey (from `old_column_class`)."""
    manager = _staged(manager, "add_foreign_key")
    meta = references._meta
    constraint = quote_identifier(name or _name(table.split(".")[-1], column, "fkey"))
    t, c = _table(table), quote_identifier(column)
    actions = [f"ON DELETE {on_delete.value}" if on_delete else "", f"ON UPDATE {on_update.value}" if on_update else ""]
    clause = " ".join(a for a in actions if a)
    manager.sql(
        forwards=(
            f"ALTER TABLE {t} ADD CONSTRAINT {constraint} FOREIGN KEY ({c}) REFERENCES {_table(meta.tablename)} "
            f"({quote_identifier(meta.primary_key._meta.db_column_name)}){' ' + clause if clause else ''} NOT VALID;\n"
        ),
        backwards=f"ALTER TABLE {t} DROP CONSTRAINT {constraint};\n",
    )
    manager.sql(forwards=f"ALTER TABLE {t} VALIDATE CONSTRAINT {constraint};\n", backwards=NOTHING_TO_UNDO)
    # As Piccolo's differ writes it: target_column too, else the next auto-diff sees it missing.
    params: dict[str, Any] = {"references": references, "on_delete": on_delete, "on_update": on_update}
    params = {key: value for key, value in params.items() if value is not None} | {"target_column": None}
    manager.alter_column(
        table_class_name=table_class,
        tablename=table,
        column_name=column,
        db_column_name=column,
        params=params,
        old_params={"references": None, "on_delete": None, "on_update": None, "target_column": None},
        column_class=ForeignKey,
        old_column_class=old_column_class,
    )
    return manager
