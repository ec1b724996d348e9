"""Template databases: migrate once, clone per test (as pgtestdb and Django's test runner do).

A template is named after its database and a hash of that database's migration files, e.g.
`dbmigrate_tpl_orion_3f9a1c2b7d04`. It is built once, on the same server as the database, by
migrating a scratch database and renaming it into place (so a half-built template is never
visible), then marked IS_TEMPLATE. Changing any migration changes the hash, so the next clone
builds a new template (keeping the newest three per database, for branches sharing a server); an
unchanged set reuses the template across runs.
Cloning is `CREATE DATABASE ... TEMPLATE`, a file copy inside the server: no migration runs.

Builders on several processes (pytest-xdist) serialise on an advisory lock taken in the
`postgres` maintenance database, then re-check, so each template is built once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from dbmigrate import connection, executor, loader, recorder
from dbmigrate.config import Database, Settings
from dbmigrate.connection import quote_identifier
from dbmigrate.errors import UserError
from dbmigrate.reporting import quiet
from dbmigrate.target import Target
from dbmigrate.urls import with_database

TEMPLATE_PREFIX = "dbmigrate_tpl_"
_BUILD_LOCK_KEY = int.from_bytes(b"dbtmplte", "big")
BUILT_COMMENT = "dbmigrate template built "
KEEP_TEMPLATES = 3  # per database: the current one and two older, for branches sharing a server


def template_name(settings: Settings, database: Database) -> str:
    """Named after the migrations and the bookkeeping tables' layout: a change to either rebuilds."""
    files = loader.discover(settings.project_root, database)
    content = [recorder.CREATE_PICCOLO_TABLE, recorder.CREATE_HISTORY_TABLE, *(f"{m.id} {m.checksum}" for m in files)]
    digest = hashlib.sha256("\n".join(content).encode()).hexdigest()[:12]
    return f"{TEMPLATE_PREFIX}{database.name}_{digest}"


async def ensure_template(settings: Settings, database: Database) -> str:
    """The name of an up-to-date template of `database`, building it if needed."""
    admin = await _admin(settings, database, f"template {database.name}")
    try:
        return await _ensure_template(settings, database, admin)
    finally:
        await admin.close()


async def clone(settings: Settings, database: Database, new_name: str) -> str:
    """Create database `new_name` as a copy of the current template; return its URL."""
    admin = await _admin(settings, database, f"clone {database.name}")
    try:
        for attempt in (1, 2):
            template = await _ensure_template(settings, database, admin)
            try:
                await admin.execute(
                    f"CREATE DATABASE {quote_identifier(new_name)} TEMPLATE {quote_identifier(template)}"
                )
                break
            except asyncpg.InvalidCatalogNameError:
                if attempt == 2:  # dropped as stale by a run of other code on this server, twice
                    raise
    finally:
        await admin.close()
    return with_database(connection.server_url(settings, database), new_name)


async def _admin(settings: Settings, database: Database, purpose: str) -> asyncpg.Connection:
    return await connection.connect(settings, connection.server_url(settings, database), purpose)


async def _ensure_template(settings: Settings, database: Database, admin: asyncpg.Connection) -> str:
    name = template_name(settings, database)
    if await _exists(admin, name):
        return name
    deadline = time.monotonic() + settings.lock_wait_seconds
    while not await admin.fetchval("SELECT pg_try_advisory_lock($1)", _BUILD_LOCK_KEY):
        if time.monotonic() > deadline:
            raise UserError(
                f"{database.name}: another process has been building a template for over "
                f"{settings.lock_wait_seconds:g} s; retry, or raise ORION_MIGRATE_LOCK_WAIT"
            )
        await asyncio.sleep(0.05)
    try:
        if not await _exists(admin, name):  # another process may have built it while we waited
            await _drop_abandoned_builds(admin)
            await _build(settings, database, admin, name)
    finally:
        await admin.fetchval("SELECT pg_advisory_unlock($1)", _BUILD_LOCK_KEY)
    return name


async def drop(settings: Settings, database: Database, name: str) -> None:
    admin = await connection.connect(settings, connection.server_url(settings, database), "drop clone")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def _exists(admin: asyncpg.Connection, name: str) -> bool:
    return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def _build(settings: Settings, database: Database, admin: asyncpg.Connection, name: str) -> None:
    scratch = f"{TEMPLATE_PREFIX}build_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE DATABASE {quote_identifier(scratch)}")
    try:
        scratch_url = with_database(connection.server_url(settings, database), scratch)
        with quiet():  # per-migration lines are noise in a test run
            await executor.migrate(Target.resolve(settings, database).with_url(scratch_url))
        await admin.execute(f"ALTER DATABASE {quote_identifier(scratch)} RENAME TO {quote_identifier(name)}")
        await admin.execute(f"ALTER DATABASE {quote_identifier(name)} WITH IS_TEMPLATE true")
        built = datetime.now(UTC).isoformat(timespec="seconds")
        await admin.execute(f"COMMENT ON DATABASE {quote_identifier(name)} IS '{BUILT_COMMENT}{built}'")
    except BaseException:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(scratch)} WITH (FORCE)")
        raise
    await _drop_stale(admin, database, keep=name)


async def _drop_abandoned_builds(admin: asyncpg.Connection) -> None:
    """Scratch databases of builds whose process died. Safe: we hold the build lock, so none is live."""
    rows = await admin.fetch(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", f"{TEMPLATE_PREFIX}build_"
    )
    for row in rows:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(row['datname'])} WITH (FORCE)")


async def _drop_stale(admin: asyncpg.Connection, database: Database, keep: str) -> None:
    """Drop all but the newest few templates of `database`: other branches may share this server."""
    rows = await admin.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database "
        "WHERE starts_with(datname, $1) AND datname <> $2",
        f"{TEMPLATE_PREFIX}{database.name}_",
        keep,
    )
    newest_first = sorted(rows, key=lambda r: r["comment"] or "", reverse=True)
    for row in newest_first[KEEP_TEMPLATES - 1 :]:
        stale = quote_identifier(row["datname"])
        await admin.execute(f"ALTER DATABASE {stale} WITH IS_TEMPLATE false")
        await admin.execute(f"DROP DATABASE IF EXISTS {stale} WITH (FORCE)")
