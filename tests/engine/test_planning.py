"""Unit tests (no server): plans, migration state, status reports against their JSON Schema, and
catalog differences."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from dbmigrate.commands.status import SCHEMA_PATH, from_state, text_lines, to_json
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.recorder import AppliedMigration, FailedMigration
from dbmigrate.engine.state import MigrationState, backwards_plan, forwards_plan
from dbmigrate.server.catalog import first_difference

ROOT = Path("/project")
WHEN = datetime(2026, 11, 26, 15, 4, 5, tzinfo=UTC)


def files(*ids: str) -> list[MigrationFile]:
    return [MigrationFile("orion", i, ROOT / "orion" / "piccolo_migrations" / f"orion_{i}.py", f"sum-{i}") for i in ids]


def applied(*ids: str, checksum: str | None = None) -> dict[str, AppliedMigration]:
    return {
        i: AppliedMigration(i, WHEN.replace(tzinfo=None), WHEN, n, checksum or f"sum-{i}", 12, "me@host pid 1", False)
        for n, i in enumerate(ids, start=1)
    }


def state(on_disk: list[MigrationFile], done: dict, failed: dict | None = None) -> MigrationState:
    return MigrationState("orion", on_disk, done, failed or {})


def test_forwards_plan_applies_pending_up_to_a_target():
    s = state(files("001_a", "002_b", "003_c"), applied("001_a"))
    assert [m.id for m in forwards_plan(s)] == ["002_b", "003_c"]
    assert [m.id for m in forwards_plan(s, to="2")] == ["002_b"]


def test_forwards_plan_refuses_out_of_order_unless_allowed():
    s = state(files("001_a", "002_b", "003_c"), applied("001_a", "003_c"))
    with pytest.raises(UserError, match="002_b numbered before"):
        forwards_plan(s)
    assert [m.id for m in forwards_plan(s, allow_out_of_order=True)] == ["002_b"]


def test_backwards_plan_reverts_in_the_order_applied_and_refuses_too_many_steps():
    s = state(files("001_a", "002_b", "003_c"), applied("001_a", "003_c", "002_b"))
    assert [m.id for m in backwards_plan(s)] == ["002_b"]
    assert [m.id for m in backwards_plan(s, to="001")] == ["002_b", "003_c"]
    with pytest.raises(UsageError, match="STEPS=4 but only 3"):
        backwards_plan(s, steps=4)
    assert backwards_plan(state(files("001_a"), {})) == []


def test_modified_and_missing_files_stop_migrate():
    s = state(files("001_a"), {**applied("001_a", checksum="old"), **applied("000_gone")})
    with pytest.raises(UserError, match="001_a was modified.*000_gone was applied but its file is missing"):
        s.check_integrity()


def _report_with_every_state() -> dict:
    failed = {
        "004_d": FailedMigration("004_d", WHEN, "UndefinedTableError: x", False, 1, 2, "line 1: CREATE INDEX ..."),
        "009_deleted": FailedMigration("009_deleted", WHEN, "", True, 0, 3, None),
    }
    s = state(files("001_a", "002_b", "003_c", "004_d"), applied("001_a", "003_c", "000_gone"), failed)
    return from_state(s, "postgresql://orion:***@db/orion")


def test_status_json_matches_its_schema_and_names_every_unfinished_migration():
    report = _report_with_every_state()
    document = json.loads(to_json([report]))
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    rows = {r["id"]: r for r in report["migrations"]}
    assert rows["004_d"]["state"] == "failed" and rows["004_d"]["statements_done"] == 1
    assert rows["009_deleted"]["state"] == "incomplete" and rows["009_deleted"]["file"] is None
    assert rows["000_gone"]["state"] == "missing" and rows["002_b"]["out_of_order"] is True
    assert rows["001_a"]["applied_at"] == "2026-11-26T15:04:05Z"
    assert report["counts"]["failed"] == 1 and report["counts"]["incomplete"] == 1 and not report["ok"]


def test_an_unreachable_database_still_matches_the_schema():
    from dbmigrate.commands.status import _report

    document = json.loads(to_json([_report("rfq", None, [], "cannot reach PostgreSQL at db:5432/orion_rfq")]))
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    assert document["databases"][0]["ok"] is False


def test_status_text_keeps_columns_for_long_ids_and_names_the_deleted_failure():
    long_id = "001_" + "x" * 70
    report = from_state(state(files(long_id, "002_b"), applied(long_id)), "url")
    lines = text_lines(report)
    assert lines[1].index("applied") == lines[2].index("pending")
    text = "\n".join(text_lines(_report_with_every_state()))
    assert "[I] 009_deleted" in text and "its file is MISSING" in text
    assert "statement 1 of 2 finished (line 1: CREATE INDEX ...)" in text


def test_a_changed_column_shows_both_sides():
    before = {"columns": ["users.email character varying(255) NOT NULL", "users.id uuid NOT NULL"]}
    after = {"columns": ["users.email text NOT NULL", "users.id uuid NOT NULL"]}
    assert first_difference(before, after) == (
        "columns: expected users.email character varying(255) NOT NULL, got users.email text NOT NULL"
    )
    assert first_difference(before, {"columns": ["users.id uuid NOT NULL"]}).startswith("columns: missing users.email")
