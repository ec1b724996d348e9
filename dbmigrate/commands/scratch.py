"""Scratch databases: a fresh database beside a target's (empty, or a copy of a template), for
verify, squash and rehearse to migrate and throw away. Invariant: a scratch database is dropped
when its block ends, however it ends (an error, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import uuid

from dbmigrate.core.urls import with_database
from dbmigrate.engine.target import Target
from dbmigrate.server import connection
from dbmigrate.server.connection import quote_identifier


@contextlib.asynccontextmanager
async def scratch_database(target: Target, purpose: str = "verify", template: str | None = None):
    """`target` moved to a new database on the same server (empty, or a copy of `template`),
    dropped afterwards."""
    admin_url = with_database(target.url, "postgres")
    name = f"dbmigrate_{purpose}_{target.name}_{uuid.uuid4().hex[:8]}"
    admin = await connection.connect(target, admin_url, purpose)  # type: ignore[arg-type]
    copied = f" TEMPLATE {quote_identifier(template)}" if template else ""
    try:
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}{copied}")
        try:
            yield target.with_url(with_database(admin_url, name))
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()
