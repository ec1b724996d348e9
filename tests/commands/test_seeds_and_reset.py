"""AC3 seed data and the story's db:reset."""

from __future__ import annotations

import asyncio

from support import Databases, migration_ids

from dbmigrate.server.catalog import first_difference

COUNTED = {
    "orion": ("tenants", "users", "user_roles", "user_entitlements"),
    "marketdata": ("venues", "instruments"),
    "rfq": ("rfqs",),
}


# The rows the fixture project's seed files hold (counted in the files, for ORION_ENV=test: reference
# and development data).
SEEDED = {
    "orion.tenants": 3,
    "orion.users": 10,
    "orion.user_roles": 13,
    "orion.user_entitlements": 8,
    "marketdata.venues": 52,
    "marketdata.instruments": 522,
    "rfq.rfqs": 5,
}


def counts(dbs: Databases) -> dict[str, int]:
    return {
        f"{name}.{table}": dbs.sql(name, f"SELECT count(*) AS n FROM {table}")[0]["n"]
        for name, tables in COUNTED.items()
        for table in tables
    }


def catalogs(dbs: Databases) -> dict[str, dict]:
    return {name: dbs.catalog(name) for name in COUNTED}


def test_seeding_twice_leaves_the_same_rows(dbs: Databases):
    dbs.cli("migrate", "all")
    dbs.cli("seed")
    first = counts(dbs)
    assert first == SEEDED
    out = dbs.cli("seed").stdout
    assert counts(dbs) == first
    assert "(+0 rows" in out and "+1" not in out.replace("(+0 rows", "")


def test_production_and_staging_load_reference_data_only(dbs: Databases):
    dbs.cli("migrate", "all")
    dbs.extra_env["ORION_ENV"] = "production"
    dbs.cli("seed")
    loaded = counts(dbs)
    assert loaded["marketdata.venues"] == SEEDED["marketdata.venues"]
    assert loaded["marketdata.instruments"] == SEEDED["marketdata.instruments"]
    assert loaded["orion.tenants"] == 0 and loaded["orion.users"] == 0 and loaded["rfq.rfqs"] == 0


def test_a_seed_whose_tables_do_not_exist_says_to_migrate_first(dbs: Databases):
    err = dbs.cli("seed", "marketdata", expect=1).stderr.strip()
    assert len(err.splitlines()) == 1
    assert "seed seeds/reference/marketdata/001_venues.csv loads table 'venues', which does not exist" in err
    assert "migrate first: make db-migrate DB=marketdata" in err


def test_reset_from_any_state_ends_in_the_same_schema_and_rows(dbs: Databases):
    dbs.cli("reset")
    expected_rows, expected_schema = counts(dbs), catalogs(dbs)
    for name in COUNTED:
        assert dbs.applied(name) == migration_ids(name)

    def assert_same() -> None:
        assert counts(dbs) == expected_rows
        for name, catalog in catalogs(dbs).items():
            assert first_difference(expected_schema[name], catalog) is None

    # Seeded, with extra rows of its own.
    dbs.sql("orion", "INSERT INTO tenants (name) VALUES ('scribbled on')")
    dbs.cli("reset")
    assert_same()
    # Half-migrated.
    dbs.cli("drop-databases")
    dbs.cli("create-databases")
    dbs.cli("migrate", "orion", "--to", "001")
    dbs.cli("reset")
    assert_same()
    # Empty (no databases at all).
    dbs.cli("drop-databases")
    dbs.cli("reset")
    assert_same()


def test_reset_never_runs_in_production_and_needs_confirmation_in_staging(dbs: Databases):
    dbs.extra_env["ORION_ENV"] = "production"
    err = dbs.cli("reset", "orion", "--confirm", "orion", expect=1).stderr
    assert "refusing to reset with ORION_ENV=production" in err
    dbs.extra_env["ORION_ENV"] = "staging"
    err = dbs.cli("reset", expect=1).stderr
    assert "confirm by naming the database(s), e.g. CONFIRM=orion,rfq,marketdata" in err
    dbs.cli("reset", "rfq", "--confirm", "rfq")
    assert dbs.applied("rfq") == migration_ids("rfq")


def test_reset_drops_creates_migrates_and_seeds_even_in_the_test_environment(dbs: Databases):
    dbs.cli("migrate", "all")
    dbs.sql("orion", "CREATE TABLE leftover (id int)")
    out = dbs.cli("reset").stdout  # the fixture sets ORION_ENV=test: the real reset all the same
    assert "reset: dropped" in out and "reset: created" in out and "orion: applied 001_initial_schema" in out
    for name in COUNTED:
        assert dbs.applied(name) == migration_ids(name)
    assert "leftover" not in dbs.tables("orion")
    assert counts(dbs) == SEEDED


def test_reset_elsewhere_migrates(dbs: Databases):
    dbs.extra_env["ORION_ENV"] = "development"
    out = dbs.cli("reset", "orion").stdout
    assert "orion: applied 001_initial_schema" in out


def test_a_slow_load_shows_a_progress_bar(tmp_path, monkeypatch, capsys):
    from dbmigrate.commands import seed as seeder

    big = tmp_path / "001_rows.csv"
    big.write_text("id\n" + "\n".join(str(i) for i in range(400_000)))
    monkeypatch.setattr(seeder, "_PROGRESS_AFTER_SECONDS", 0.0)  # as if the load were slow
    monkeypatch.setattr(seeder, "_CHUNK_BYTES", 1 << 16)

    async def drain() -> int:
        return sum([len(chunk) async for chunk in seeder._chunks(big, "001_rows.csv")])

    assert asyncio.run(drain()) == big.stat().st_size
    progress = capsys.readouterr().err
    assert "001_rows.csv: [" in progress and "100%" in progress
