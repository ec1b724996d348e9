"""Scratch databases: a fresh, empty database beside a target's, for verify and squash to migrate
and throw away. Invariant: a scratch database is dropped when its block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import uuid

from dbmigrate.core.urls import with_database
from dbmigrate.engine.target import Target
from dbmigrate.server import connection
from dbmigrate.server.connection import quote_identifier


@contextlib.asynccontextmanager
async def scratch_database(target: Target):
    """`target` moved to a new empty database on the same server, dropped afterwards."""
    admin_url = with_database(target.url, "postgres")
    name = f"dbmigrate_verify_{target.name}_{uuid.uuid4().hex[:8]}"
    admin = await connection.connect(target, admin_url, "verify")  # type: ignore[arg-type]
    try:
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
        try:
            yield target.with_url(with_database(admin_url, name))
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()
