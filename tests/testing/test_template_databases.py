"""The story's "database reset for test runs": a fresh migrated database per test, handed out from a
warm pool of clones of a template migrated once, on a test cluster tuned for speed."""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from migration_files import write_sql_migration
from support import FIXTURE_PROJECT, ROOT, Databases, migration_ids, run_sql

from dbmigrate.core.config import DATABASES, load_settings
from dbmigrate.core.urls import database_name, with_database
from dbmigrate.server import connection, embedded
from dbmigrate.testing import templates as template_databases
from dbmigrate.testing.plugin import fresh_database, pool, settings_for_tests


def test_each_test_gets_a_fresh_fully_migrated_database(orion_database_url: str, rfq_database_url: str):
    rows = run_sql(orion_database_url, "SELECT name FROM migration WHERE app_name = 'orion' ORDER BY name")
    assert [r["name"] for r in rows] == migration_ids("orion")
    run_sql(orion_database_url, "INSERT INTO tenants (name) VALUES ('only in this test')")
    assert run_sql(rfq_database_url, "SELECT count(*) AS n FROM migration")[0]["n"] == len(migration_ids("rfq"))


def test_the_reference_fixture_has_the_reference_data_and_nothing_else(
    marketdata_reference_database_url: str, marketdata_database_url: str, orion_reference_database_url: str
):
    venues = "SELECT count(*) AS n FROM venues"
    with (ROOT / "seeds" / "reference" / "marketdata" / "001_venues.csv").open(newline="") as handle:
        rows = len(list(csv.reader(handle))) - 1  # the seed file's rows, its header aside
    assert run_sql(marketdata_reference_database_url, venues)[0]["n"] == rows
    assert run_sql(marketdata_database_url, venues)[0]["n"] == 0
    # Development data (tenants, users) is not reference data.
    assert run_sql(orion_reference_database_url, "SELECT count(*) AS n FROM tenants")[0]["n"] == 0


def test_two_fresh_databases_share_nothing_and_are_dropped_after_use():
    first, second = fresh_database(DATABASES["orion"]), fresh_database(DATABASES["orion"])
    url_a, url_b = next(first), next(second)
    try:
        assert url_a != url_b
        run_sql(url_a, "INSERT INTO tenants (name) VALUES ('a')")
        assert run_sql(url_b, "SELECT count(*) AS n FROM tenants")[0]["n"] == 0
    finally:
        first.close()
        second.close()
    pool().drain()
    names = {database_name(url_a), database_name(url_b)}
    existing = {r["datname"] for r in run_sql(with_database(url_a, "postgres"), "SELECT datname FROM pg_database")}
    assert not names & existing


def test_a_warm_pool_hands_out_a_database_in_milliseconds():
    clones = pool()
    orion = DATABASES["orion"]
    clones.release(clones.acquire(orion))  # the template exists and the pool is filling
    timings = []
    for _ in range(5):
        deadline = time.monotonic() + 30
        while clones._ready[(orion.name, False)].qsize() < clones.size and time.monotonic() < deadline:
            time.sleep(0.01)  # a test takes longer than a refill; wait as one would
        clones.drain()  # and than dropping the previous test's database
        started = time.perf_counter()
        name = clones.acquire(orion)
        timings.append(time.perf_counter() - started)
        clones.release(name)
    # Microseconds when the pool's thread is idle; up to one GIL switch interval (5 ms) when it is
    # busy. Either way a small fraction of creating and migrating a database (50 to 150 ms here).
    assert sorted(timings)[2] < 0.02, timings


def test_the_test_cluster_is_tuned_for_speed_and_is_not_the_development_server(server_url: str):
    settings = load_settings(FIXTURE_PROJECT)
    if settings.get("ORION_TEST_DATABASE_URL"):
        return  # tests were pointed at another server on purpose
    settings_map = {
        r["name"]: r["setting"]
        for r in run_sql(
            server_url,
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')",
        )
    }
    assert settings_map == {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    data_directory = Path(run_sql(server_url, "SHOW data_directory")[0][0])
    assert data_directory != settings.embedded_data_dir.resolve()
    if Path("/dev/shm").is_dir():
        assert data_directory.is_relative_to("/dev/shm")


def test_the_template_is_reused_until_a_migration_changes(project, dbs: Databases):
    base = settings_for_tests()
    urls = {db.url_variable: dbs.url(db.name) for db in DATABASES.values()}  # the test server, not an embedded one
    settings = replace(load_settings(project), values={**base.values, **urls})
    orion = DATABASES["orion"]
    before = template_databases.template_name(settings, orion)
    assert before == template_databases.template_name(base, orion)  # same files, same template
    assert before != template_databases.template_name(base, orion, reference_data=True)
    write_sql_migration(project, "orion", "905_extra", "CREATE TABLE extra (id int)", "DROP TABLE extra")
    after = template_databases.template_name(settings, orion)
    assert after != before

    async def build_and_clone() -> str:
        await connection.prepare(settings)
        return await template_databases.clone(settings, orion, f"{dbs.prefix}_clone")

    url = asyncio.run(build_and_clone())
    try:
        assert "extra" in {r["tablename"] for r in run_sql(url, "SELECT tablename FROM pg_tables")}
        assert run_sql(dbs.server_url, "SELECT 1 FROM pg_database WHERE datname = $1", after)
    finally:
        asyncio.run(template_databases.drop(settings, orion, f"{dbs.prefix}_clone"))
        # Leave the shared template for the unchanged tree in place for other tests.
        run_sql(dbs.server_url, f'ALTER DATABASE "{after}" WITH IS_TEMPLATE false')
        run_sql(dbs.server_url, f'DROP DATABASE IF EXISTS "{after}" WITH (FORCE)')


def _plugin_run(tmp_path: Path, test_source: str, **env: str) -> subprocess.CompletedProcess:
    """pytest in a service repository of its own (tmp_path), with the plugin installed."""
    (tmp_path / "test_service.py").write_text(test_source)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORION_") and not k.endswith("DATABASE_URL")}
    clean.pop("PYTEST_XDIST_WORKER", None)
    clean.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_service.py"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_outside_the_project_the_plugin_migrates_the_installed_apps_with_no_variable(tmp_path: Path):
    source = (
        "import orion\n"
        "from support_rows import count\n"
        "def test_x(orion_database_url):\n"
        f"    assert orion.__file__ == {str(ROOT / 'orion' / '__init__.py')!r}\n"
        "    assert count(orion_database_url, 'migration') > 0\n"
    )
    (tmp_path / "support_rows.py").write_text(
        "import asyncio, asyncpg\n"
        "def count(url, table):\n"
        "    async def go():\n"
        "        conn = await asyncpg.connect(url)\n"
        "        try:\n"
        "            return await conn.fetchval(f'SELECT count(*) FROM {table}')\n"
        "        finally:\n"
        "            await conn.close()\n"
        "    return asyncio.run(go())\n"
    )
    result = _plugin_run(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_session_stops_the_test_cluster_it_started_and_removes_its_data(tmp_path: Path):
    pgdata = Path(tempfile.mkdtemp(prefix="orion-plugin-"))  # not under tmp_path: see test_embedded_server.py
    source = (
        "import asyncpg, asyncio\n"
        "def test_service(orion_reference_database_url):\n"
        "    async def go():\n"
        "        conn = await asyncpg.connect(orion_reference_database_url)\n"
        "        try:\n"
        "            return await conn.fetchval('SELECT count(*) FROM migration')\n"
        "        finally:\n"
        "            await conn.close()\n"
        f"    assert asyncio.run(go()) == {len(migration_ids('orion'))}\n"
    )
    result = _plugin_run(tmp_path, source, ORION_PROJECT_ROOT=str(FIXTURE_PROJECT), ORION_PGDATA=str(pgdata))
    assert result.returncode == 0, result.stdout + result.stderr
    settings = replace(load_settings(FIXTURE_PROJECT), values={"ORION_PGDATA": str(pgdata)})
    cluster = embedded.data_dir_for_tests(settings.embedded_data_root, settings.postgres_major)
    try:
        assert "1 passed" in result.stdout  # it ran there
        assert not cluster.parent.exists()  # and was stopped, its data in RAM removed with its folder
    finally:
        embedded.stop(cluster)
        shutil.rmtree(cluster.parent, ignore_errors=True)
        shutil.rmtree(pgdata, ignore_errors=True)
