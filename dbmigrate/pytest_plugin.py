"""pytest fixtures for any Orion service: a fresh, fully migrated database for every test.

Installed with the package (entry point `pytest11`), so a service's tests just ask for
`orion_database_url`, `rfq_database_url` or `marketdata_database_url`: each yields the URL of a new
database cloned from a template migrated once (see templates_db.py), and drops it after the test.
Safe under pytest-xdist: every test gets its own database.

The server is the one ORION_TEST_DATABASE_URL names, else the configured one, else the embedded.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from dbmigrate.config import DATABASES, Database, Settings, load_settings
from dbmigrate.urls import with_database


def settings_for_tests() -> Settings:
    """The project's settings with every database on the test server (ORION_TEST_DATABASE_URL)."""
    settings = load_settings()
    if str(settings.project_root) not in sys.path:
        sys.path.insert(0, str(settings.project_root))  # migrations import piccolo_conf
    server = settings.get("ORION_TEST_DATABASE_URL")
    if server:
        urls = {db.url_variable: with_database(server, db.default_dbname) for db in DATABASES.values()}
        settings = replace(settings, values={**settings.values, **urls})
    return settings


def fresh_database(database: Database) -> Iterator[str]:
    """A new migrated copy of `database` for the duration of the generator."""
    from dbmigrate import connection, templates_db

    settings = settings_for_tests()
    name = f"test_{database.name}_{uuid.uuid4().hex[:12]}"

    async def create() -> str:
        await connection.prepare(settings)
        return await templates_db.clone(settings, database, name)

    url = asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(templates_db.drop(settings, database, name))


def _fixture_for(database: Database) -> Callable:
    def fixture() -> Iterator[str]:
        yield from fresh_database(database)

    fixture.__doc__ = f"URL of a fresh, fully migrated {database.name} database, dropped after the test."
    return pytest.fixture(name=f"{database.name}_database_url")(fixture)


for _database in DATABASES.values():
    globals()[f"{_database.name}_database_url"] = _fixture_for(_database)
