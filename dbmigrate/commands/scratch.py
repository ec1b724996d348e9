"""Scratch databases: a fresh database beside a target's (empty, or a copy of a template), for
verify, squash and rehearse to migrate and throw away. Invariant: a scratch database is dropped
when its block ends, however it ends (an error, Ctrl-C), and one whose maker was killed (SIGKILL,
a lost machine) is dropped by the next verify or rehearsal on that server.
"""

from __future__ import annotations

import contextlib
import re
import uuid
import zlib

from dbmigrate.core.reporting import say
from dbmigrate.core.urls import with_database
from dbmigrate.engine.target import Target
from dbmigrate.server import connection, pooling
from dbmigrate.server.connection import quote_identifier

# A scratch database is named dbmigrate_<purpose>_<database>_<8 hex digits>. While it lives, its
# maker holds a session advisory lock (this class, the CRC of its name) on the maintenance
# database: one nobody holds the lock of was left by a killed verify or rehearsal (SIGKILL, a lost
# machine), and the next one on that server drops it.
SCRATCH_PURPOSES = ("verify", "rehearse")
SCRATCH_NAME = re.compile(rf"dbmigrate_({'|'.join(SCRATCH_PURPOSES)})_[a-z_]+_[0-9a-f]{{8}}")
SCRATCH_LOCK_CLASS = int.from_bytes(b"dbvf", "big") - 2**31  # a signed int4


@contextlib.asynccontextmanager
async def scratch_database(target: Target, purpose: str = "verify", template: str | None = None):
    """`target` moved to a new database on the same server (empty, or a copy of `template`),
    dropped afterwards, whatever happens (an error, Ctrl-C), and, if this process is killed first,
    by the next verify or rehearsal on that server."""
    admin_url = with_database(target.url, "postgres")
    name = f"dbmigrate_{purpose}_{target.name}_{uuid.uuid4().hex[:8]}"
    admin = await connection.connect(target, admin_url, purpose)  # type: ignore[arg-type]
    copied = f" TEMPLATE {quote_identifier(template)}" if template else ""
    try:
        # Through a pooler in transaction mode no session lock lasts: nothing tells a live scratch
        # database from an abandoned one, so none is dropped there.
        if not pooling.is_pooled(admin):
            await _drop_abandoned_scratch_databases(admin)
            await admin.execute("SELECT pg_advisory_lock($1, $2)", SCRATCH_LOCK_CLASS, _scratch_key(name))
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}{copied}")
        try:
            yield target.with_url(with_database(admin_url, name))
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def _drop_abandoned_scratch_databases(admin) -> None:
    """Drop every scratch database whose maker is gone (nobody holds its lock)."""
    rows = await admin.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, 'dbmigrate_')")
    for name in (row["datname"] for row in rows if SCRATCH_NAME.fullmatch(row["datname"])):
        key = _scratch_key(name)
        if await admin.fetchval("SELECT pg_try_advisory_lock($1, $2)", SCRATCH_LOCK_CLASS, key):
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
                say(f"verify: dropped {name}, a scratch database a killed verify left behind")
            finally:
                await admin.execute("SELECT pg_advisory_unlock($1, $2)", SCRATCH_LOCK_CLASS, key)


def _scratch_key(name: str) -> int:
    return zlib.crc32(name.encode()) - 2**31
