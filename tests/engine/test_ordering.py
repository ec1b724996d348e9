"""Migrations apply in the order of their numbers, never of their text (issue 16, class 1): `1000_`
after `999_`, whatever the zero padding, in discovery, state, plans, status, the fleet's latest,
import numbering and Piccolo's own sorting. Unit tests, no server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dbmigrate.commands import fleet
from dbmigrate.commands.status import from_state, text_lines
from dbmigrate.core.config import DATABASES
from dbmigrate.core.errors import UserError
from dbmigrate.engine.files import MigrationFile, discover
from dbmigrate.engine.recorder import AppliedMigration
from dbmigrate.engine.state import MigrationState, backwards_plan, find, forwards_plan
from dbmigrate.importing.source import SourceMigration
from dbmigrate.importing.writer import plan

ROOT = Path("/project")
WHEN = datetime(2026, 11, 26, 15, 4, 5, tzinfo=UTC)
# Written out, in the order they must apply: across 999 -> 1000, and with padding that text orders wrongly.
IN_ORDER = ["001_a", "002_b", "099_c", "998_d", "0999_e", "1000_f", "1001_g", "1200_h"]


def files(*ids: str) -> list[MigrationFile]:
    return [MigrationFile("orion", i, ROOT / f"orion_{i}.py", f"sum-{i}") for i in ids]


def applied(*ids: str) -> dict[str, AppliedMigration]:
    return {
        i: AppliedMigration(i, WHEN.replace(tzinfo=None), WHEN, n, f"sum-{i}", 1, "me", False)
        for n, i in enumerate(ids, start=1)
    }


def state(done: list[str], on_disk: list[str] = IN_ORDER) -> MigrationState:
    return MigrationState("orion", files(*on_disk), applied(*done), {})


def write_files(folder: Path, *ids: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (folder / f"orion_{i}.py").write_text(f'ID = "{i}"\n')


def test_discovery_orders_by_number_not_text(tmp_path):
    folder = tmp_path / "orion" / "piccolo_migrations"
    write_files(folder, *reversed(IN_ORDER))
    assert [m.id for m in discover(tmp_path, DATABASES["orion"])] == IN_ORDER


@pytest.mark.parametrize("first, second", [("004_a", "004_b"), ("4_a", "004_b"), ("0004_a", "4_b")])
def test_two_files_with_one_number_are_refused_naming_both(tmp_path, first, second):
    write_files(tmp_path / "orion" / "piccolo_migrations", first, second, "005_c")
    with pytest.raises(UserError) as refused:
        discover(tmp_path, DATABASES["orion"])
    message = str(refused.value)
    assert "number 4" in message and f"orion_{first}.py" in message and f"orion_{second}.py" in message


def test_the_1000th_migration_after_999_applied_is_not_out_of_order():
    s = state(IN_ORDER[:5])  # up to 0999_e
    assert s.out_of_order == []
    assert [m.id for m in forwards_plan(s)] == ["1000_f", "1001_g", "1200_h"]
    assert s.last_applied == "0999_e"


def test_a_pending_migration_numbered_before_the_last_applied_is_out_of_order_by_number():
    s = state(["001_a", "002_b", "1000_f"])
    assert [m.id for m in s.out_of_order] == ["099_c", "998_d", "0999_e"]
    with pytest.raises(UserError, match=r"numbered before the last applied migration \(1000_f\)"):
        forwards_plan(s)


@pytest.mark.parametrize(
    "to, expected_last",
    [("999", "0999_e"), ("0999", "0999_e"), ("1001", "1001_g"), ("1000_f", "1000_f"), ("99", "099_c")],
)
def test_migrate_to_stops_at_the_number_named(to, expected_last):
    planned = [m.id for m in forwards_plan(state(["001_a"]), to=to)]
    assert planned == IN_ORDER[1 : IN_ORDER.index(expected_last) + 1]


def test_down_to_reverts_everything_numbered_after_the_target():
    s = state(IN_ORDER)
    assert [m.id for m in backwards_plan(s, to="0999")] == ["1200_h", "1001_g", "1000_f"]
    assert [m.id for m in backwards_plan(s, to="1000")] == ["1200_h", "1001_g"]
    assert [m.id for m in backwards_plan(s, to="99")][-1] == "998_d"
    assert find(s.files, "999", "orion").id == "0999_e"


def test_status_lists_migrations_by_number_with_missing_ones_in_their_place():
    report = from_state(state(["001_a", "0500_gone", "1000_f"]), "url")
    assert [r["id"] for r in report["migrations"]] == [*IN_ORDER[:3], "0500_gone", *IN_ORDER[3:]]
    shown = [line.split("] ", 1)[1].split()[0] for line in text_lines(report)[1:-1]]
    assert shown == [*IN_ORDER[:3], "0500_gone", *IN_ORDER[3:]]


def test_the_fleets_latest_applied_is_the_highest_number():
    s = state(["001_a", "998_d", "1000_f", "0999_e"])
    assert fleet._latest(s) == "1000_f"
    assert fleet._latest_applied(from_state(s, "url")) == "1000_f"


def _source(n: int) -> SourceMigration:
    return SourceMigration(f"{n}", f"step {n}", "SELECT 1;", "SELECT 1;", True, f"{n}_x.sql", (n,))


def test_an_imported_history_of_1005_is_numbered_003_to_1007_and_applies_in_that_order(tmp_path):
    folder = tmp_path / "orion" / "piccolo_migrations"
    write_files(folder, "001_first", "002_second")
    existing = [("001_first", folder / "orion_001_first.py"), ("002_second", folder / "orion_002_second.py")]
    planned = plan(folder, "orion", existing, "dbmate", [_source(n) for n in range(1, 1006)])
    ids = [p.migration_id for p in planned]
    assert ids[0] == "003_step_1" and ids[996] == "999_step_997" and ids[997] == "1000_step_998"
    assert ids[-1] == "1007_step_1005"
    for item in planned:
        for path, content in item.files.items():
            path.write_text(content)
    discovered = [m.id for m in discover(tmp_path, DATABASES["orion"])]
    assert discovered == ["001_first", "002_second", *ids]


def test_piccolo_orders_its_migrations_by_number_once_dbmigrate_is_installed(tmp_path):
    """Piccolo's schema snapshot (auto migrations, drop_column's backwards), check and --fake."""
    import asyncio
    import uuid
    from types import SimpleNamespace

    from piccolo.apps.migrations.commands.base import BaseMigrationManager

    from dbmigrate.engine.piccolo_engine import NumberedID, order_by_number

    order_by_number()
    tag = uuid.uuid4().hex[:8]  # Piccolo imports migration files as top-level modules
    for migration_id in reversed(IN_ORDER):
        (tmp_path / f"m_{tag}_{migration_id}.py").write_text(
            "from piccolo.apps.migrations.auto.migration_manager import MigrationManager\n"
            f'ID = "{migration_id}"\n\n'
            "async def forwards():\n"
            '    return MigrationManager(migration_id=ID, app_name="orion")\n'
        )
    manager = BaseMigrationManager()
    modules = manager.get_migration_modules(str(tmp_path))
    assert manager.get_migration_ids(modules) == IN_ORDER
    config = SimpleNamespace(resolved_migrations_folder_path=str(tmp_path))
    managers = asyncio.run(manager.get_migration_managers(config, max_migration_id="1000_f"))
    assert [m.migration_id for m in managers] == IN_ORDER[: IN_ORDER.index("1000_f") + 1]
    shuffled = [NumberedID(i) for i in ("1000_f", "0999_e", "099_c")]
    assert sorted(set(shuffled) - {"099_c"}) == ["0999_e", "1000_f"]  # forwards --fake's sort
