"""A long history, end to end (issue 16, class 1): 1,200 migrations, half imported from a dbmate
folder, migrate, roll back by STEPS and by TO past 999, baseline and show status in the order of
their numbers; verify walks a history that crosses 999. The expected IDs are written out here
from the generator (tests/histories/long.py), never read back from the code under test."""

from __future__ import annotations

import json

from histories import long
from support import Databases, migration_ids

from dbmigrate.core.config import DATABASES
from dbmigrate.core.urls import with_database
from dbmigrate.testing.helpers import run_sql


def _write_long_history(project, tmp_path, native_count: int, imported_count: int) -> list[str]:
    """rfq's two fixture migrations, `native_count` written natively (003...), then
    `imported_count` imported from dbmate; the IDs in the order they must apply."""
    folder = project / "rfq" / "piccolo_migrations"
    native = long.write_native(long.steps(native_count), folder, "rfq", 3)
    imported_steps = long.steps(imported_count, start=native_count)
    long.write_dbmate(imported_steps, tmp_path / "dbmate")
    first = 3 + native_count
    return migration_ids("rfq") + native + [long.migration_id(first + k, s) for k, s in enumerate(imported_steps)]


def _status_ids(dbs: Databases) -> list[str]:
    report = json.loads(dbs.cli("status", "rfq", "--format", "json").stdout)
    return [row["id"] for row in report["databases"][0]["migrations"]]


def test_1200_migrations_half_imported_from_dbmate_migrate_roll_back_baseline_and_show_status_by_number(
    project, dbs: Databases, tmp_path
):
    expected = _write_long_history(project, tmp_path, 598, 600)
    assert len(expected) == 1200 and expected[998].startswith("999_") and expected[999].startswith("1000_")
    out = dbs.cli("import", "rfq", "--from", str(tmp_path / "dbmate")).stdout
    assert f"as 601_{long.file_name(long.steps(1, 598)[0])} .. {expected[-1]}" in out

    dbs.cli("migrate", "rfq", "--to", "0999", timeout=600)
    assert dbs.applied("rfq") == expected[:999]
    dbs.cli("migrate", "rfq", timeout=600)  # the 1000th after 999: in order, not "out of order"
    assert dbs.applied("rfq") == expected
    assert _status_ids(dbs) == expected
    text = dbs.cli("status", "rfq", "--check").stdout.splitlines()
    assert [line.split("] ", 1)[1].split()[0] for line in text[1:-1]] == expected

    out = dbs.cli("down", "rfq", "--steps", "3").stdout
    assert [line.split()[2] for line in out.splitlines() if " reverted " in line] == expected[-1:-4:-1]
    dbs.cli("down", "rfq", "--to", "0999", timeout=600)
    assert dbs.applied("rfq") == expected[:999]
    tables = dbs.tables("rfq")
    assert "lh_t99" in tables and "lh_t100" not in tables  # made by 993_create_lh_t99 and 1003_create_lh_t100
    dbs.cli("migrate", "rfq", "--to", "1001")
    assert dbs.applied("rfq") == expected[:1001]

    fresh = f"{dbs.prefix}_baseline"
    run_sql(dbs.server_url, f'CREATE DATABASE "{fresh}"')
    try:
        dbs.extra_env[DATABASES["rfq"].url_variable] = _url_of(dbs, fresh)
        out = dbs.cli("baseline", "rfq", "--to", "1000").stdout
        assert f"marked 1000 migration(s) as applied without running them, up to {expected[999]}" in out
        rows = run_sql(_url_of(dbs, fresh), "SELECT name FROM migration WHERE app_name = 'rfq' ORDER BY id")
        assert [r["name"] for r in rows] == expected[:1000]
        assert "1000 applied, 200 pending" in dbs.cli("status", "rfq").stdout
    finally:
        dbs.extra_env.pop(DATABASES["rfq"].url_variable)
        run_sql(dbs.server_url, f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


def _url_of(dbs: Databases, name: str) -> str:
    return with_database(dbs.server_url, name)


def test_verify_walks_a_history_across_999_in_order_of_number(project, dbs: Databases, tmp_path):
    """Up, down, up for each migration of a history whose numbers cross 999 (990 padded to
    `0990_`, then `1000_`..), so text order would walk it wrongly; small enough to verify quickly."""
    folder = project / "rfq" / "piccolo_migrations"
    history = long.steps(20)
    ids = long.write_native(history[:10], folder, "rfq", 990)  # 990_ .. 999_
    (folder / f"rfq_{ids[0]}.py").rename(folder / f"rfq_0{ids[0]}.py")  # the file name does not matter
    source = (folder / f"rfq_0{ids[0]}.py").read_text().replace(f'ID = "{ids[0]}"', f'ID = "0{ids[0]}"')
    (folder / f"rfq_0{ids[0]}.py").write_text(source)
    ids[0] = f"0{ids[0]}"
    ids += long.write_native(history[10:], folder, "rfq", 1000)  # 1000_ .. 1009_
    dbs.cli("schema-dump", "rfq")
    out = dbs.cli("verify", "rfq", "--trace", "0", timeout=300).stdout  # the order, not the safety policy
    assert f"{len(ids) + 2} migration(s) applied from empty; each rollback restores the schema" in out
    dbs.cli("migrate", "rfq")
    assert dbs.applied("rfq") == migration_ids("rfq") + ids


def test_comparing_the_catalogs_of_a_large_schema_takes_linear_time():
    """verify compares catalogs after every step of a long history: 50,000 columns on each side
    (a quadratic comparison would take minutes) compare in well under a second."""
    import time

    from dbmigrate.server.catalog import first_difference

    before = {"columns": sorted(f"t{i // 10}.c{i} integer NOT NULL" for i in range(50_000))}
    changed = "t4999.c49999 integer NOT NULL"
    after = {"columns": sorted(c.replace("integer", "bigint") if c == changed else c for c in before["columns"])}
    started = time.perf_counter()
    assert first_difference(before, after) == (
        "columns: expected t4999.c49999 integer NOT NULL, got t4999.c49999 bigint NOT NULL"
    )
    assert first_difference(before, before) is None
    assert time.perf_counter() - started < 1.0
