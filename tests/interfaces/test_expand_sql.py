"""Unit tests (no server): what the expand/contract helpers write. Each stage parses (PostgreSQL's
parser), squawk finds nothing but what a contract step does on purpose (exempted with a reason),
names fit PostgreSQL's 63 characters, identifiers are quoted, and Piccolo's state gets its operation."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from piccolo.columns.column_types import UUID, BigInt, Integer
from piccolo.table import Table
from support import FIXTURE_PROJECT

from dbmigrate import expand
from dbmigrate.batched import StagedMigration
from dbmigrate.commands.lint import SQUAWK_CONFIG, _lint_one
from dbmigrate.engine.batches import BatchStage
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.migration import MigrationOptions
from dbmigrate.engine.staged import StagedSteps
from dbmigrate.engine.statements import split
from dbmigrate.sql import SQLMigration


class Tenant(Table, tablename="tenants"):
    id = UUID(primary_key=True)


def staged() -> StagedMigration:
    return StagedMigration(migration_id="003_x", app_name="orion", description="x")


HELPERS = {
    "rename_column": lambda m: expand.rename_column(
        m, table="users", column="display_name", to="full_name", type="varchar(255)", table_class="User"
    ),
    "finish_rename_column": lambda m: expand.finish_rename_column(
        m, table="users", column="display_name", to="full_name", default="''", not_null=True
    ),
    "change_column_type": lambda m: expand.change_column_type(
        m,
        table="user_entitlements",
        column="rfq_rate_limit",
        type="bigint",
        old_type="integer",
        table_class="UserEntitlement",
        column_class=BigInt,
        old_column_class=Integer,
    ),
    "finish_change_column_type": lambda m: expand.finish_change_column_type(
        m, table="user_entitlements", column="rfq_rate_limit"
    ),
    "add_not_null": lambda m: expand.add_not_null(m, table="tenants", column="settings", table_class="Tenant"),
    "add_foreign_key": lambda m: expand.add_foreign_key(
        m, table="audit_log", column="tenant_id", references=Tenant, table_class="AuditLog", old_column_class=UUID
    ),
}
# (SQL stages, batched stages) each helper adds: every long step is a stage of its own
STAGES = {
    "rename_column": (1, 1),
    "finish_rename_column": (4, 0),
    "change_column_type": (1, 1),
    "finish_change_column_type": (1, 0),
    "add_not_null": (3, 0),
    "add_foreign_key": (2, 0),
}


@pytest.mark.parametrize("helper", HELPERS)
def test_each_helpers_stages_parse_and_each_long_step_is_a_stage_of_its_own(helper):
    manager = HELPERS[helper](staged())
    kinds = [isinstance(stage, BatchStage) for stage in manager.stages]
    assert (kinds.count(False), kinds.count(True)) == STAGES[helper]
    steps = StagedSteps(MigrationFile("orion", "003_x", None, "sum"), MigrationOptions(), manager)
    assert steps.problems() == []
    for stage in manager.steps:
        assert split(stage.forwards.text, 1)


@pytest.mark.parametrize("helper", HELPERS)
def test_squawk_finds_nothing_in_a_helpers_sql_but_what_it_exempts_with_a_reason(helper, tmp_path: Path):
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    manager = HELPERS[helper](staged())
    path = tmp_path / "orion_003_x.py"
    path.write_text("# the migration")
    steps = StagedSteps(MigrationFile("orion", "003_x", path, "sum"), MigrationOptions(), manager)
    findings = asyncio.run(_lint_one(None, squawk, FIXTURE_PROJECT / SQUAWK_CONFIG, tmp_path, steps, tmp_path))
    assert findings == []
    assert all(reason.strip() for reason in steps.options.squawk_exempt.values())


def test_the_contract_steps_exemptions_name_only_what_they_do():
    assert set(HELPERS["finish_rename_column"](staged()).squawk_exempt) == {
        "ban-drop-column",
        "ban-drop-function",
        "ban-drop-constraint",  # of NOT NULL (not_null=True)
    }
    assert set(HELPERS["finish_change_column_type"](staged()).squawk_exempt) == {
        "ban-drop-column",
        "ban-drop-function",
        "renaming-column",
    }
    assert HELPERS["rename_column"](staged()).squawk_exempt == {}


def test_piccolos_state_gets_the_matching_operation():
    rename = HELPERS["rename_column"](staged()).rename_columns.rename_columns
    assert [(r.old_column_name, r.new_column_name, r.table_class_name) for r in rename] == [
        ("display_name", "full_name", "User")
    ]
    (altered,) = HELPERS["add_not_null"](staged()).alter_columns.alter_columns
    assert (altered.column_name, altered.params, altered.old_params) == ("settings", {"null": False}, {"null": True})
    (typed,) = HELPERS["change_column_type"](staged()).alter_columns.alter_columns
    assert (typed.column_class, typed.old_column_class) == (BigInt, Integer)
    assert HELPERS["finish_rename_column"](staged()).alter_columns.alter_columns == []  # the expand step did it


def test_long_names_are_shortened_to_63_characters_and_stay_apart_and_identifiers_are_quoted():
    long_table = "t" * 40
    first = expand.sync_names(long_table, "a" * 30, "b" * 30)
    second = expand.sync_names(long_table, "a" * 30, "c" * 30)
    assert len(first) == len(second) == 63 and first != second
    manager = expand.rename_column(staged(), table="order", column="select", to="from", type="text", table_class="O")
    sql = manager.steps[0].forwards.text
    assert 'ALTER TABLE "order" ADD COLUMN "from" text' in sql and 'NEW."select"' in sql
    assert split(sql, 1)


def test_a_helper_given_a_plain_sql_migration_says_to_use_a_staged_one():
    with pytest.raises(TypeError, match="make the manager a StagedMigration"):
        expand.add_not_null(SQLMigration(migration_id="x", app_name="orion"), table="t", column="c", table_class="T")
