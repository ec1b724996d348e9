"""The expand/contract helpers (dbmigrate.expand) through a real PgBouncer in transaction pooling:
the old and the new application's statements run concurrently with each migration and through
the window between them, nothing is lost, no query waits more than 100 ms for a lock, writes
through the old name are read under the new one and the other way round, and tables.py stays in
step with the migrations' Piccolo state. Skipped, with the reason, where pgbouncer is not installed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pgbouncer_server import PgBouncer, pooled_and_direct, running_pgbouncer
from private_server import PrivateServer
from support import Databases, with_connection
from workload import Client, Workload

from dbmigrate.core.urls import with_database

# Skipped without pgbouncer, failed instead in CI (conftest.py); a workload's waits are bounded, so
# they run alone after the parallel suite (make test).
pytestmark = [pytest.mark.pgbouncer, pytest.mark.timing]

ROWS = 20_000
TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")

MIGRATION = """
from dbmigrate.batched import StagedMigration
from dbmigrate.expand import *  # noqa: F403
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import UUID, BigInt, Integer
from piccolo.table import Table

ID = "{migration_id}"
VERSION = "1.38.0"
DESCRIPTION = "expand/contract"
{phase}

class Tenant(Table, tablename="tenants"):
    id = UUID(primary_key=True)


async def forwards():
    manager = StagedMigration(migration_id=ID, app_name="orion", description=DESCRIPTION)
    {call}
    return manager
"""


def write_migration(project: Path, migration_id: str, call: str, post: bool = False) -> None:
    path = project / "orion" / "piccolo_migrations" / f"orion_{migration_id}.py"
    path.write_text(MIGRATION.format(migration_id=migration_id, call=call, phase='PHASE = "post"' if post else ""))


def edit_tables(project: Path, old: str, new: str) -> None:
    """tables.py as the new application's code has it (the drift check compares it with the state)."""
    path = project / "orion" / "tables.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new).replace("    JSONB,\n", "    JSONB,\n    BigInt,\n"))


@pytest.fixture(scope="module")
def pgbouncer(private_server: PrivateServer) -> Iterator[PgBouncer]:
    with running_pgbouncer(private_server, pool_size=12) as bouncer:
        yield bouncer


@pytest.fixture
def live(private_server: PrivateServer, pgbouncer: PgBouncer, tmp_path: Path) -> Iterator[Databases]:
    """orion migrated through PgBouncer, with ROWS users (and an entitlement and an audit row each)."""
    with pooled_and_direct(private_server, pgbouncer, tmp_path / "project") as (pooled, direct):
        pooled.cli("migrate", "orion")
        seed = f"""
            INSERT INTO tenants (id, name) VALUES ('{TENANT}', 'acme');
            INSERT INTO users (tenant_id, email, username, display_name)
                SELECT '{TENANT}', 'u' || g || '@acme.test', 'u' || g, 'name ' || g FROM generate_series(1, {ROWS}) g;
            INSERT INTO user_entitlements (user_id, rfq_rate_limit) SELECT id, 10 FROM users;
            INSERT INTO audit_log (tenant_id, action, entity_type, entity_id)
                SELECT '{TENANT}', 'seed', 'user', id::text FROM users;
            ANALYZE;
        """
        direct_to_pooled = with_database(private_server.url(), f"{pooled.prefix}_orion")
        with_connection(direct_to_pooled, lambda conn: conn.execute(seed))
        yield pooled


def ids(dbs: Databases, table: str) -> list:
    return [r["id"] for r in dbs.sql("orion", f"SELECT id FROM {table} ORDER BY id")]


def text_value(client: Client) -> str:
    return f"v{client.index}-{client.rng.randrange(10**9)}"


def int_value(client: Client) -> int:
    return client.rng.randrange(1, 2**31 - 1)


def app(table: str, write: str, read: str, value, insert: str | None = None) -> list:
    """One application version's statements: update `write` of a row the client owns (remember the
    value), read `read` of one it wrote and compare, and (given `insert`, SQL taking the value as $1
    and returning the new row's id) insert rows."""

    async def update(conn: asyncpg.Connection, client: Client) -> None:
        row, new = client.rng.choice(client.rows), value(client)
        await conn.execute(f"UPDATE {table} SET {write} = $1 WHERE id = $2", new, row)
        client.expected[row] = new

    async def check(conn: asyncpg.Connection, client: Client) -> None:
        if not client.expected:
            return
        row = client.rng.choice(list(client.expected))
        seen = await conn.fetchval(f"SELECT {read} FROM {table} WHERE id = $1", row)
        if seen != client.expected[row]:
            client.mismatches.append(f"{table} {row}: wrote {write}={client.expected[row]!r}, read {read}={seen!r}")

    async def add(conn: asyncpg.Connection, client: Client) -> None:
        new = value(client)
        row = await conn.fetchval(insert, new)
        client.rows.append(row)
        client.expected[row] = new

    return [update, update, check, check] + ([add] if insert else [])


def run_with(dbs: Databases, workloads: list[Workload], *cli_args: str, seconds: float = 2.0) -> str:
    """Run the CLI (or, without arguments, wait `seconds`) while `workloads` run; fail on any query
    that was blocked past 100 ms, failed, or read a value other than the one written."""
    for workload in workloads:
        workload.__enter__()
    try:
        out = dbs.cli(*cli_args, timeout=300).stdout if cli_args else ""
        if not cli_args:
            time.sleep(seconds)
    finally:
        for workload in workloads:
            workload.stop()
    for workload in workloads:
        result = workload.result
        print(f"workload: {result.summary()}")
        assert result.queries > 20, "the workload hardly ran"
        assert not result.errors, result.errors[:3]
        assert not result.blocked, f"{len(result.blocked)} queries waited more than 100 ms for a lock"
        assert not workload.mismatches, workload.mismatches[:3]
    return out


def assert_nothing_lost(dbs: Databases, table: str, column: str, workloads: list[Workload], initial: list) -> dict:
    """Every row is there (the initial ones and every one inserted), each with the value last written."""
    known = set(initial)
    inserted = [row for w in workloads for c in w.clients for row in c.rows if row not in known]
    found = {r["id"]: r["v"] for r in dbs.sql("orion", f"SELECT id, {column} AS v FROM {table}")}
    assert set(found) == known | set(inserted), "rows are missing or appeared"
    expected = {row: value for w in workloads for row, value in w.expected.items()}
    lost = [(row, value, found[row]) for row, value in expected.items() if found[row] != value]
    assert not lost, f"{len(lost)} writes lost, e.g. {lost[:3]}"
    return found


def columns(dbs: Databases, table: str) -> dict[str, str]:
    rows = dbs.sql(
        "orion",
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        table,
    )
    return {r["attname"]: r["type"] for r in rows}


def test_rename_column_keeps_both_names_in_step_through_pgbouncer_and_the_contract_drops_the_old(live):
    dbs, project = live, live.cwd
    users = ids(dbs, "users")
    quarter = len(users) // 4
    shares = [users[i * quarter : (i + 1) * quarter] for i in range(4)]
    insert_old = (
        f"INSERT INTO users (tenant_id, email, username, display_name) VALUES ('{TENANT}', gen_random_uuid()::text, "
        "gen_random_uuid()::text, $1) RETURNING id"
    )
    insert_new = insert_old.replace("display_name", "full_name")
    write_migration(
        project,
        "003_rename_display_name",
        'rename_column(manager, table="users", column="display_name", to="full_name", type="varchar(255)", '
        'table_class="User")',
    )
    old_only = Workload(
        dbs.url("orion"), app("users", "display_name", "display_name", text_value, insert_old), rows=shares[0]
    )
    out = run_with(dbs, [old_only], "migrate", "orion")
    assert "applied 003_rename_display_name" in out
    assert not dbs.sql("orion", "SELECT 1 FROM users WHERE full_name IS DISTINCT FROM display_name")  # backfilled

    old = Workload(dbs.url("orion"), app("users", "display_name", "full_name", text_value, insert_old), rows=shares[1])
    new = Workload(dbs.url("orion"), app("users", "full_name", "display_name", text_value, insert_new), rows=shares[2])
    run_with(dbs, [old, new])  # the window: both versions at once, each reading what the other name got

    edit_tables(project, "    display_name = Varchar(", "    full_name = Varchar(")
    assert "no changes detected" in dbs.cli("create", "drift", "orion", "--auto").stdout  # state in step

    write_migration(
        project,
        "004_finish_rename_display_name",
        'finish_rename_column(manager, table="users", column="display_name", to="full_name")',
        post=True,
    )
    new_only = Workload(
        dbs.url("orion"), app("users", "full_name", "full_name", text_value, insert_new), rows=shares[3]
    )
    out = run_with(dbs, [new_only], "migrate", "orion")
    assert "applied 004_finish_rename_display_name" in out
    assert (
        "display_name" not in columns(dbs, "users") and columns(dbs, "users")["full_name"] == "character varying(255)"
    )
    assert not dbs.sql("orion", "SELECT 1 FROM pg_trigger WHERE tgname LIKE 'users_display_name_full_name_sync%'")
    found = assert_nothing_lost(dbs, "users", "full_name", [old_only, old, new, new_only], users)
    written = {row for w in (old_only, old, new, new_only) for row in w.expected}
    untouched = [row for row in users if row not in written]
    assert untouched and all(found[row].startswith("name ") for row in untouched)  # backfilled from the old name


def test_change_column_type_keeps_old_and_shadow_in_step_through_pgbouncer_and_the_contract_swaps_them(live):
    dbs, project = live, live.cwd
    rows = ids(dbs, "user_entitlements")
    quarter = len(rows) // 4
    shares = [rows[i * quarter : (i + 1) * quarter] for i in range(4)]
    insert = (
        "WITH u AS (INSERT INTO users (tenant_id, email, username) "
        f"VALUES ('{TENANT}', gen_random_uuid()::text, gen_random_uuid()::text) RETURNING id) "
        "INSERT INTO user_entitlements (user_id, rfq_rate_limit) SELECT id, $1 FROM u RETURNING id"
    )
    write_migration(
        project,
        "003_rfq_rate_limit_bigint",
        'change_column_type(manager, table="user_entitlements", column="rfq_rate_limit", type="bigint", '
        'old_type="integer", table_class="UserEntitlement", column_class=BigInt, old_column_class=Integer)',
    )
    old_only = Workload(
        dbs.url("orion"),
        app("user_entitlements", "rfq_rate_limit", "rfq_rate_limit", int_value, insert),
        rows=shares[0],
    )
    assert "applied 003_rfq_rate_limit_bigint" in run_with(dbs, [old_only], "migrate", "orion")
    assert columns(dbs, "user_entitlements")["rfq_rate_limit_new"] == "bigint"
    assert not dbs.sql(
        "orion", "SELECT 1 FROM user_entitlements WHERE rfq_rate_limit_new IS DISTINCT FROM rfq_rate_limit"
    )

    # the window: writes through the old column are read in the shadow of the new type, and back
    old = Workload(
        dbs.url("orion"),
        app("user_entitlements", "rfq_rate_limit", "rfq_rate_limit_new", int_value, insert),
        rows=shares[1],
    )
    new = Workload(
        dbs.url("orion"), app("user_entitlements", "rfq_rate_limit_new", "rfq_rate_limit", int_value), rows=shares[2]
    )
    run_with(dbs, [old, new])

    edit_tables(project, "    rfq_rate_limit = Integer(", "    rfq_rate_limit = BigInt(")
    assert "no changes detected" in dbs.cli("create", "drift", "orion", "--auto").stdout

    write_migration(
        project,
        "004_finish_rfq_rate_limit_bigint",
        'finish_change_column_type(manager, table="user_entitlements", column="rfq_rate_limit", default="10")',
        post=True,
    )
    new_only = Workload(
        dbs.url("orion"),
        app("user_entitlements", "rfq_rate_limit", "rfq_rate_limit", int_value, insert),
        rows=shares[3],
    )
    assert "applied 004_finish_rfq_rate_limit_bigint" in run_with(dbs, [new_only], "migrate", "orion")
    after = columns(dbs, "user_entitlements")
    assert after["rfq_rate_limit"] == "bigint" and "rfq_rate_limit_new" not in after
    default = dbs.sql(
        "orion",
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_name = 'user_entitlements' AND column_name = 'rfq_rate_limit'",
    )
    assert default[0]["column_default"] == "10"
    assert_nothing_lost(dbs, "user_entitlements", "rfq_rate_limit", [old_only, old, new, new_only], rows)
    assert (
        dbs.sql(
            "orion",
            "UPDATE user_entitlements SET rfq_rate_limit = 5000000000 WHERE id = $1 RETURNING rfq_rate_limit",
            rows[0],
        )[0]["rfq_rate_limit"]
        == 5_000_000_000
    )


def test_add_not_null_validates_without_blocking_both_versions_writes_through_pgbouncer(live):
    dbs, project = live, live.cwd
    rows = ids(dbs, "user_entitlements")
    write_migration(
        project,
        "003_max_open_orders_not_null",
        'add_not_null(manager, table="user_entitlements", column="max_open_orders", table_class="UserEntitlement")',
    )
    old = Workload(
        dbs.url("orion"), app("user_entitlements", "max_open_orders", "max_open_orders", int_value), rows=rows[::2]
    )
    new = Workload(
        dbs.url("orion"), app("user_entitlements", "max_open_orders", "max_open_orders", int_value), rows=rows[1::2]
    )
    assert "applied 003_max_open_orders_not_null" in run_with(dbs, [old, new], "migrate", "orion")
    assert dbs.sql(
        "orion",
        "SELECT attnotnull FROM pg_attribute "
        "WHERE attrelid = 'user_entitlements'::regclass AND attname = 'max_open_orders'",
    )[0]["attnotnull"]
    assert not dbs.sql("orion", "SELECT 1 FROM pg_constraint WHERE conname LIKE '%is_not_null%'")  # the check is gone
    assert_nothing_lost(dbs, "user_entitlements", "max_open_orders", [old, new], rows)
    with pytest.raises(asyncpg.NotNullViolationError):
        with_connection(
            dbs.url("orion"), lambda conn: conn.execute("UPDATE user_entitlements SET max_open_orders = NULL")
        )
    edit_tables(
        project,
        "    max_open_orders = Integer(default=100, null=True)",
        "    max_open_orders = Integer(default=100, null=False)",
    )
    assert "no changes detected" in dbs.cli("create", "drift", "orion", "--auto").stdout


def test_add_foreign_key_validates_in_its_own_transaction_while_both_versions_insert_through_pgbouncer(live):
    dbs, project = live, live.cwd
    rows = ids(dbs, "audit_log")
    write_migration(
        project,
        "003_audit_log_tenant_fkey",
        'add_foreign_key(manager, table="audit_log", column="tenant_id", references=Tenant, table_class="AuditLog", '
        "old_column_class=UUID, on_delete=OnDelete.no_action, on_update=OnUpdate.no_action)",
    )
    insert = (
        f"INSERT INTO audit_log (tenant_id, action, entity_type, entity_id) VALUES ('{TENANT}', $1, 'user', 'x') "
        "RETURNING id"
    )

    async def read(conn: asyncpg.Connection, client: Client) -> None:
        if client.expected:
            row = client.rng.choice(list(client.expected))
            if await conn.fetchval("SELECT action FROM audit_log WHERE id = $1", row) != client.expected[row]:
                client.mismatches.append(f"audit_log {row} is not what was inserted")

    queries = app("audit_log", "action", "action", text_value, insert)[-1:] + [read]  # append-only: insert, read
    old, new = Workload(dbs.url("orion"), queries), Workload(dbs.url("orion"), queries)
    assert "applied 003_audit_log_tenant_fkey" in run_with(dbs, [old, new], "migrate", "orion")
    constraint = dbs.sql(
        "orion",
        "SELECT convalidated, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
        "WHERE conname = 'audit_log_tenant_id_fkey'",
    )
    assert constraint[0]["convalidated"] and "REFERENCES tenants(id)" in constraint[0]["definition"]
    assert_nothing_lost(dbs, "audit_log", "action", [old, new], rows)
    bogus = (
        "INSERT INTO audit_log (tenant_id, action, entity_type, entity_id) VALUES (gen_random_uuid(), 'x', 'y', 'z')"
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        with_connection(dbs.url("orion"), lambda conn: conn.execute(bogus))
    edit_tables(
        project,
        "    tenant_id = UUID(default=None, null=False)\n    user_id",
        "    tenant_id = ForeignKey(references=Tenant, null=False, on_delete=OnDelete.no_action, "
        "on_update=OnUpdate.no_action)\n    user_id",
    )
    assert "no changes detected" in dbs.cli("create", "drift", "orion", "--auto").stdout
