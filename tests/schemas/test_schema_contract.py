"""AC6: the migrated databases have exactly the story's schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import Databases, catalog_of, run_sql, with_connection

from dbmigrate.core.config import DATABASES
from dbmigrate.server.catalog import first_difference

STORY_SQL = Path(__file__).parent / "contract" / "story_001_initial_schema.sql"


def test_orion_migrations_build_exactly_the_storys_initial_schema(dbs: Databases, server_url: str):
    story_db = f"{dbs.prefix}_story"
    run_sql(server_url, f'CREATE DATABASE "{story_db}"')
    try:
        story_url = dbs.url("orion").replace(f"{dbs.prefix}_orion", story_db)
        with_connection(story_url, lambda conn: conn.execute(STORY_SQL.read_text()))
        dbs.cli("migrate", "orion", "--to", "001_initial_schema")
        expected, actual = catalog_of(story_url), catalog_of(dbs.url("orion"))
        assert first_difference(expected, actual) is None
        assert len(expected["indexes"]) > 15 and len(expected["triggers"]) == 3
    finally:
        run_sql(server_url, f'DROP DATABASE IF EXISTS "{story_db}" WITH (FORCE)')


def test_rfq_and_marketdata_start_with_the_same_outbox_and_processed_events_as_orion(dbs: Databases):
    for name in DATABASES:
        dbs.cli("migrate", name, "--to", "001")
    orion = catalog_of(dbs.url("orion"))
    shared = {"outbox_events", "processed_events"}

    def only_shared(catalog: dict) -> dict:
        return {
            kind: [row for row in rows if any(table in repr(row) for table in shared)]
            for kind, rows in catalog.items()
            if kind not in ("functions", "triggers")
        }

    for name in ("rfq", "marketdata"):
        assert first_difference(only_shared(orion), only_shared(catalog_of(dbs.url(name)))) is None


def test_piccolo_agrees_that_nothing_is_pending_after_migrate(dbs: Databases):
    dbs.cli("migrate", "all")
    for name in DATABASES:
        env = {**dbs.env, "ORION_DB": name}
        code = (
            "import asyncio\n"
            "from piccolo.apps.migrations.commands.check import CheckMigrationManager\n"
            f"print(asyncio.run(CheckMigrationManager('{name}').havent_ran_count()))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=dbs.cwd, env=env, capture_output=True, text=True, check=True
        ).stdout
        assert out.strip().splitlines()[-1] == "0"
