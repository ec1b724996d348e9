"""The story's "database reset for test runs": a fresh migrated database per test, cloned from a
template migrated once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from conftest import Databases, migration_ids, run_sql
from migration_files import write_sql_migration

from dbmigrate import connection, templates_db
from dbmigrate.config import DATABASES, load_settings
from dbmigrate.pytest_plugin import fresh_database, settings_for_tests
from dbmigrate.urls import database_name, with_database


def test_each_test_gets_a_fresh_fully_migrated_database(orion_database_url: str, rfq_database_url: str):
    rows = run_sql(orion_database_url, "SELECT name FROM migration WHERE app_name = 'orion' ORDER BY name")
    assert [r["name"] for r in rows] == migration_ids("orion")
    run_sql(orion_database_url, "INSERT INTO tenants (name) VALUES ('only in this test')")
    assert run_sql(rfq_database_url, "SELECT count(*) AS n FROM migration")[0]["n"] == len(migration_ids("rfq"))


def test_two_fresh_databases_share_nothing():
    first, second = fresh_database(DATABASES["orion"]), fresh_database(DATABASES["orion"])
    url_a, url_b = next(first), next(second)
    try:
        assert url_a != url_b
        run_sql(url_a, "INSERT INTO tenants (name) VALUES ('a')")
        assert run_sql(url_b, "SELECT count(*) AS n FROM tenants")[0]["n"] == 0
    finally:
        first.close()
        second.close()
    names = {database_name(url_a), database_name(url_b)}
    existing = {r["datname"] for r in run_sql(with_database(url_a, "postgres"), "SELECT datname FROM pg_database")}
    assert not names & existing


def test_the_template_is_reused_until_a_migration_changes(project, dbs: Databases):
    base = settings_for_tests()
    urls = {db.url_variable: dbs.url(db.name) for db in DATABASES.values()}  # the test server, not an embedded one
    settings = replace(load_settings(project), values={**base.values, **urls})
    orion = DATABASES["orion"]
    before = templates_db.template_name(settings, orion)
    assert before == templates_db.template_name(base, orion)  # same files, same template
    write_sql_migration(project, "orion", "905_extra", "CREATE TABLE extra (id int)", "DROP TABLE extra")
    after = templates_db.template_name(settings, orion)
    assert after != before

    async def build_and_clone() -> str:
        await connection.prepare(settings)
        return await templates_db.clone(settings, orion, f"{dbs.prefix}_clone")

    url = asyncio.run(build_and_clone())
    try:
        assert "extra" in {r["tablename"] for r in run_sql(url, "SELECT tablename FROM pg_tables")}
        assert run_sql(dbs.server_url, "SELECT 1 FROM pg_database WHERE datname = $1", after)
    finally:
        asyncio.run(templates_db.drop(settings, orion, f"{dbs.prefix}_clone"))
        # Leave the shared template for the unchanged tree in place for other tests.
        run_sql(dbs.server_url, f'ALTER DATABASE "{after}" WITH IS_TEMPLATE false')
        run_sql(dbs.server_url, f'DROP DATABASE IF EXISTS "{after}" WITH (FORCE)')
