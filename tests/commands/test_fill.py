"""The rehearsal's fill: synthetic rows for every table of each app, by COPY, that PostgreSQL
accepts under every key, unique, CHECK and foreign key; and its pieces on their own (no server)."""

from __future__ import annotations

import asyncio
import decimal
import re

import asyncpg
import pytest
from support import Databases

from dbmigrate.commands import fill, fill_values
from dbmigrate.commands.rehearse import rows_per_table
from dbmigrate.core.errors import UsageError, UserError


def test_every_table_of_every_app_fills_with_rows_its_constraints_accept(dbs: Databases):
    dbs.cli("migrate", "all")

    async def fill_one(name: str) -> dict[str, int]:
        conn = await asyncpg.connect(dbs.url(name))
        try:
            result = await fill.fill_database(conn, 500, connect=lambda: asyncpg.connect(dbs.url(name)))
            # COPY checked every row against every key, unique, CHECK and foreign key as it went in.
            counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in result.rows}
            return counts
        finally:
            await conn.close()

    expected = {
        "orion": {
            "audit_log",
            "outbox_events",
            "processed_events",
            "tenants",
            "user_entitlements",
            "user_roles",
            "users",
        },
        "rfq": {"outbox_events", "processed_events", "rfq_quotes", "rfq_state_history", "rfqs"},
        "marketdata": {"instruments", "market_data_snapshots", "outbox_events", "processed_events", "venues"},
    }
    for name, tables in expected.items():
        counts = asyncio.run(fill_one(name))
        assert counts == {table: 500 for table in tables}, name
    assert dbs.applied("orion") == ["001_initial_schema", "002_audit_log_append_only"]  # bookkeeping untouched


def test_a_check_constraint_becomes_the_values_a_column_may_take():
    domains = fill_values.check_domains(
        "CHECK (((side)::text = ANY ((ARRAY['buy'::character varying, 'sell'::character varying])::text[])))"
    )
    assert domains["side"].choices == ["buy", "sell"]
    bounds = fill_values.check_domains("CHECK (((quantity > (0)::numeric) AND (quantity <= (100)::numeric)))")
    assert (bounds["quantity"].low, bounds["quantity"].low_open, bounds["quantity"].high) == (0, True, 100)
    assert fill_values.check_domains("CHECK ((length(code) >= 3))")["code"].min_length == 3
    assert fill_values.check_domains("CHECK (((mic)::text ~ '^[A-Z0-9]{4}$'::text))")["mic"].pattern == "^[A-Z0-9]{4}$"
    quantity = fill_values.type_generator("numeric", False, 10, 1, "quantity", bounds["quantity"], None)
    assert all(decimal.Decimal(0) < value <= 100 for value in quantity(range(5000)))


@pytest.mark.parametrize("pattern", ["^[A-Z]{2}[A-Z0-9]{9}[0-9]$", "^[A-Z0-9]{4}$", r"^\d{3}-[a-f]+$", "^EU[0-9]?X$"])
def test_values_for_a_pattern_match_it_and_unique_ones_never_repeat(pattern):
    alphabets = fill_values.regex_alphabets(pattern)
    unique = len(alphabets) >= 4  # "EU[0-9]?X" is shortest as "EUX": one value only
    values = fill_values.regex_generator(alphabets, unique=unique, rows=5000, salt=3)(range(5000))
    assert all(re.fullmatch(pattern, value) for value in values)  # Python's own regex engine is the judge
    assert len(set(values)) == (5000 if unique else 1)


def test_more_rows_than_distinct_values_is_refused():
    with pytest.raises(fill_values.CannotGenerate, match="allows 36 distinct values, fewer than 37 rows"):
        fill_values.regex_generator(fill_values.regex_alphabets("^[A-Z0-9]$"), unique=True, rows=37, salt=1)
    with pytest.raises(fill_values.CannotGenerate, match="32767 distinct values"):
        fill_values.type_generator("int2", True, 40000, 1, "n", fill_values.Domain(), None)


def test_rows_may_be_given_per_table():
    assert rows_per_table("1000000") == (1_000_000, {})
    assert rows_per_table("50000,users=200000,public.tenants=100") == (50_000, {"users": 200_000, "tenants": 100})
    with pytest.raises(UsageError, match="ROWS='x=y' is not understood"):
        rows_per_table("x=y")


def test_a_foreign_key_cycle_is_refused_with_the_tables_named():
    a = fill.Table(1, "public", "a", [], foreign_keys=[fill.ForeignKey(["b_id"], 2, ["id"])])
    b = fill.Table(2, "public", "b", [], foreign_keys=[fill.ForeignKey(["a_id"], 1, ["id"])])
    with pytest.raises(UserError, match=r"foreign keys form a cycle \(a -> b -> a\)"):
        fill.order([a, b])
