"""The services' schemas (the 002 migrations of rfq, marketdata and orion) and the seed data files.

Seeds are checked as data here (formats, check digits, ids, cross-database references, that they
load and reload as no-ops); how the seed runner loads is tested with the runner.
"""

from __future__ import annotations

import csv
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from support import ROOT, Databases, with_connection

from dbmigrate.server.catalog import first_difference

SEEDS = ROOT / "seeds"
MARKETDATA_SEEDS = SEEDS / "reference" / "marketdata"
SEED_NAMESPACE = uuid.UUID("5e681040-bdf9-4c34-bc5b-0209d9207add")  # seeds/README.md
SECOND_MIGRATIONS = {
    "orion": "002_audit_log_append_only",
    "rfq": "002_rfqs_quotes_and_history",
    "marketdata": "002_venues_instruments_snapshots",
}
TENANT, USER, INSTRUMENT = (str(uuid.uuid4()) for _ in range(3))


def run(dbs: Databases, name: str, work):
    """`await work(connection)` on database `name`."""
    return with_connection(dbs.url(name), work)


def fails(dbs: Databases, name: str, sql: str, *args) -> asyncpg.PostgresError:
    """The error `sql` raises (the test fails if it raises none)."""

    async def work(conn):
        with pytest.raises(asyncpg.PostgresError) as caught:
            await conn.execute(sql, *args)
        return caught.value

    return run(dbs, name, work)


def insert_rfq(dbs: Databases, **overrides) -> str:
    values = {
        "tenant_id": TENANT,
        "requester_id": USER,
        "instrument_id": INSTRUMENT,
        "instrument_symbol": "AAPL",
        "side": "buy",
        "quantity": 100,
        "currency": "USD",
        "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
        **overrides,
    }
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    rows = dbs.sql("rfq", f"INSERT INTO rfqs ({columns}) VALUES ({placeholders}) RETURNING id", *values.values())
    return str(rows[0]["id"])


# --------------------------------------------------------------------------------------------- rfq


def test_rfq_constraints_reject_bad_rows_and_accept_good_ones(dbs: Databases):
    dbs.cli("migrate", "rfq", "--to", "002")
    rfq = insert_rfq(dbs)
    assert dbs.sql("rfq", "SELECT state FROM rfqs WHERE id = $1", uuid.UUID(rfq))[0]["state"] == "open"

    bad_rows = {
        "rfqs_side_check": {"side": "hold"},
        "rfqs_state_check": {"state": "pending"},
        "rfqs_quantity_check": {"quantity": 0},
        "rfqs_currency_check": {"currency": "usd"},
    }
    for constraint, overrides in bad_rows.items():
        with pytest.raises(asyncpg.CheckViolationError, match=constraint):
            insert_rfq(dbs, **overrides)

    quote = (
        "INSERT INTO rfq_quotes (rfq_id, tenant_id, dealer_id, price, quantity, state, valid_until)"
        " VALUES ($1, $2, $3, 101.5, 100, $4, now() + interval '1 minute')"
    )
    dealer = uuid.uuid4()
    error = fails(dbs, "rfq", quote, uuid.UUID(rfq), uuid.UUID(TENANT), dealer, "maybe")
    assert isinstance(error, asyncpg.CheckViolationError) and "rfq_quotes_state_check" in str(error)
    dbs.sql("rfq", quote, uuid.UUID(rfq), uuid.UUID(TENANT), dealer, "active")
    # One live quote per dealer per RFQ.
    error = fails(dbs, "rfq", quote, uuid.UUID(rfq), uuid.UUID(TENANT), dealer, "active")
    assert isinstance(error, asyncpg.UniqueViolationError) and "uq_rfq_quotes_active_dealer" in str(error)
    error = fails(dbs, "rfq", quote, uuid.uuid4(), uuid.UUID(TENANT), dealer, "active")
    assert isinstance(error, asyncpg.ForeignKeyViolationError)

    history = "INSERT INTO rfq_state_history (rfq_id, tenant_id, from_state, to_state) VALUES ($1, $2, $3, $4)"
    dbs.sql("rfq", history, uuid.UUID(rfq), uuid.UUID(TENANT), None, "open")
    error = fails(dbs, "rfq", history, uuid.UUID(rfq), uuid.UUID(TENANT), "open", "done")
    assert isinstance(error, asyncpg.CheckViolationError)

    # updated_at follows updates; deleting the RFQ deletes its quotes and history.
    before = dbs.sql("rfq", "SELECT updated_at FROM rfqs WHERE id = $1", uuid.UUID(rfq))[0]["updated_at"]
    dbs.sql("rfq", "UPDATE rfqs SET state = 'quoted' WHERE id = $1", uuid.UUID(rfq))
    after = dbs.sql("rfq", "SELECT updated_at FROM rfqs WHERE id = $1", uuid.UUID(rfq))[0]["updated_at"]
    assert after > before
    dbs.sql("rfq", "DELETE FROM rfqs WHERE id = $1", uuid.UUID(rfq))
    for table in ("rfq_quotes", "rfq_state_history"):
        assert dbs.sql("rfq", f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0


def test_rfq_down_keeps_an_update_updated_at_it_did_not_create(dbs: Databases):
    dbs.cli("migrate", "rfq", "--to", "001")
    function = "CREATE FUNCTION update_updated_at() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql"
    dbs.sql("rfq", function)
    before = dbs.catalog("rfq")
    dbs.cli("migrate", "rfq", "--to", "002")
    assert dbs.catalog("rfq")["functions"] == before["functions"]  # not replaced
    dbs.cli("down", "rfq")
    assert first_difference(before, dbs.catalog("rfq")) is None


# ---------------------------------------------------------------------------------------- marketdata


def test_snapshots_land_in_the_partition_of_their_month(dbs: Databases):
    dbs.cli("migrate", "marketdata", "--to", "002")
    instrument = uuid.uuid4()
    times = {
        datetime(2026, 11, 15, 14, 30, tzinfo=UTC): "market_data_snapshots_2026_11",
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC): "market_data_snapshots_2026_12",
        datetime(2027, 1, 1, tzinfo=UTC): "market_data_snapshots_2027_01",
        datetime(2027, 3, 31, 12, tzinfo=UTC): "market_data_snapshots_2027_03",
        datetime(2027, 4, 1, tzinfo=UTC): "market_data_snapshots_default",
        datetime(2020, 6, 1, tzinfo=UTC): "market_data_snapshots_default",
    }
    for at in times:
        dbs.sql(
            "marketdata",
            "INSERT INTO market_data_snapshots (instrument_id, bid, ask, snapshot_at) VALUES ($1, 1.1, 1.2, $2)",
            instrument,
            at,
        )
    rows = dbs.sql("marketdata", "SELECT tableoid::regclass::text AS partition, snapshot_at FROM market_data_snapshots")
    assert {row["snapshot_at"]: row["partition"] for row in rows} == times
    key = dbs.sql(
        "marketdata",
        "SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint"
        " WHERE conrelid = 'market_data_snapshots'::regclass AND contype = 'p'",
    )
    assert key[0]["definition"] == "PRIMARY KEY (instrument_id, snapshot_at, id)"


def test_venue_and_instrument_constraints(dbs: Databases):
    dbs.cli("migrate", "marketdata", "--to", "002")
    venue = "INSERT INTO venues (mic, operating_mic, name, country, timezone) VALUES ($1, $1, 'x', 'US', 'UTC')"
    dbs.sql("marketdata", venue, "XNYS")
    for bad in ("xnys", "XN-S"):
        assert "venues_mic_check" in str(fails(dbs, "marketdata", venue, bad))
    assert isinstance(fails(dbs, "marketdata", venue, "XNYS"), asyncpg.UniqueViolationError)
    instrument = (
        "INSERT INTO instruments (symbol, isin, asset_class, currency, venue_id, name)"
        " VALUES ($1, $2, $3, 'USD', (SELECT id FROM venues), 'x')"
    )
    dbs.sql("marketdata", instrument, "AAPL", "US0378331005", "equity")
    dbs.sql("marketdata", instrument, "EUR/USD", None, "fx")
    assert "instruments_asset_class_check" in str(fails(dbs, "marketdata", instrument, "X", None, "stock"))
    assert "instruments_isin_check" in str(fails(dbs, "marketdata", instrument, "X", "US037833100", "equity"))
    assert isinstance(fails(dbs, "marketdata", instrument, "AAPL", None, "equity"), asyncpg.UniqueViolationError)


# --------------------------------------------------------------------------------------------- orion


def test_audit_log_refuses_update_delete_and_truncate_but_takes_inserts(dbs: Databases):
    dbs.cli("migrate", "orion", "--to", "002")
    insert = "INSERT INTO audit_log (tenant_id, action, entity_type, entity_id) VALUES ($1, 'login', 'user', 'u1')"
    dbs.sql("orion", insert, uuid.uuid4())
    dbs.sql("orion", insert, uuid.uuid4())
    for operation, sql in {
        "UPDATE": "UPDATE audit_log SET action = 'logout'",
        "DELETE": "DELETE FROM audit_log",
        "TRUNCATE": "TRUNCATE audit_log",
    }.items():
        error = fails(dbs, "orion", sql)
        assert f"audit_log is append-only: {operation} is not allowed" in str(error)
    assert dbs.sql("orion", "SELECT count(*) AS n FROM audit_log WHERE action = 'login'")[0]["n"] == 2


# ---------------------------------------------------------------------------------------- down of 002


@pytest.mark.parametrize("name", sorted(SECOND_MIGRATIONS))
def test_down_of_002_restores_the_catalog_of_001_exactly(dbs: Databases, name: str):
    dbs.cli("migrate", name, "--to", "001")
    before = dbs.catalog(name)
    out = dbs.cli("migrate", name, "--to", "002").stdout
    assert f"applied {SECOND_MIGRATIONS[name]}" in out
    migrated = dbs.catalog(name)
    assert first_difference(before, migrated) is not None
    dbs.cli("down", name)
    assert first_difference(before, dbs.catalog(name)) is None
    dbs.cli("migrate", name, "--to", "002")
    assert first_difference(migrated, dbs.catalog(name)) is None


# ------------------------------------------------------------------------------------ reference data


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def isin_is_valid(isin: str) -> bool:
    """ISO 6166: two letters, nine alphanumerics, and a Luhn check digit over the letters as numbers."""
    if not re.fullmatch(r"[A-Z]{2}[A-Z0-9]{9}[0-9]", isin):
        return False
    digits = "".join(str(int(char, 36)) for char in isin[:-1])
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10 == int(isin[-1])


def test_isin_check_digit_algorithm():
    assert isin_is_valid("US0378331005") and isin_is_valid("DE000BASF111") and isin_is_valid("GB0002374006")
    assert not isin_is_valid("US0378331006") and not isin_is_valid("IE00B4L5Y984") and not isin_is_valid("US037833100")


def test_venues_csv():
    venues = read_csv(MARKETDATA_SEEDS / "001_venues.csv")
    assert len(venues) >= 40
    for venue in venues:
        assert re.fullmatch(r"[A-Z0-9]{4}", venue["mic"]), venue
        assert re.fullmatch(r"[A-Z0-9]{4}", venue["operating_mic"]), venue
        assert re.fullmatch(r"[A-Z]{2}", venue["country"]), venue
        ZoneInfo(venue["timezone"])  # a real IANA time zone
        assert venue["id"] == str(uuid.uuid5(SEED_NAMESPACE, f"venue:{venue['mic']}")), venue
    assert len({v["mic"] for v in venues}) == len(venues)


def test_instruments_csv():
    venues = {v["id"]: v["mic"] for v in read_csv(MARKETDATA_SEEDS / "001_venues.csv")}
    instruments = read_csv(MARKETDATA_SEEDS / "002_instruments.csv")
    assert len(instruments) >= 300
    asset_classes = {"equity", "fx", "fixed_income", "etf", "future", "option", "crypto"}
    for row in instruments:
        assert row["venue_id"] in venues, row
        assert row["id"] == str(uuid.uuid5(SEED_NAMESPACE, f"instrument:{venues[row['venue_id']]}:{row['symbol']}"))
        assert row["asset_class"] in asset_classes, row
        assert re.fullmatch(r"[A-Z]{3}", row["currency"]), row
        if row["asset_class"] == "fx":
            assert row["isin"] == "" and row["currency"] == row["symbol"].split("/")[1], row
        else:
            assert isin_is_valid(row["isin"]), row
    isins = [row["isin"] for row in instruments if row["isin"]]
    assert len(isins) == len(set(isins)) >= 200
    assert len({(row["venue_id"], row["symbol"]) for row in instruments}) == len(instruments)


def test_seed_files_fit_the_schema_and_reload_as_no_ops(dbs: Databases):
    """The data, loaded by `seed` (ORION_ENV=test: reference and development): every file loads, every
    CSV row is new the first time, and the second load adds nothing."""
    dbs.cli("migrate", "all")
    first = dbs.cli("seed", "all").stdout
    for path in sorted(MARKETDATA_SEEDS.glob("*.csv")):
        assert f"seeded {path.relative_to(ROOT)} (+{len(read_csv(path))} rows" in first
    files = sorted(p for p in SEEDS.glob("*/*/[0-9][0-9][0-9]_*") if p.suffix in (".csv", ".sql"))
    again = dbs.cli("seed", "all").stdout
    for path in files:
        assert f"seeded {path.relative_to(ROOT)} (+0 rows" in again
    # seeds/development: 10 users (002_users.sql), 5 RFQs (001_rfqs.sql).
    assert dbs.sql("orion", "SELECT count(*) AS n FROM users")[0]["n"] == 10
    assert dbs.sql("rfq", "SELECT count(*) AS n FROM rfqs")[0]["n"] == 5
    # Cross-database references resolve: RFQs name seeded tenants, users and instruments.
    tenants = {r["id"] for r in dbs.sql("orion", "SELECT id FROM tenants")}
    users = {r["id"] for r in dbs.sql("orion", "SELECT id FROM users")}
    instruments = {r["id"]: r["symbol"] for r in dbs.sql("marketdata", "SELECT id, symbol FROM instruments")}
    for rfq in dbs.sql("rfq", "SELECT tenant_id, requester_id, instrument_id, instrument_symbol FROM rfqs"):
        assert rfq["tenant_id"] in tenants and rfq["requester_id"] in users
        assert instruments[rfq["instrument_id"]] == rfq["instrument_symbol"]
    for quote in dbs.sql("rfq", "SELECT dealer_id FROM rfq_quotes"):
        assert quote["dealer_id"] in users
