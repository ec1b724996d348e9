"""Template databases and a warm pool of their clones: a migrated test database in a millisecond.

A template is named after its database and a hash of that database's migration files (and, for a
template with reference data, of the reference seed files), e.g. `dbmigrate_tpl_orion_3f9a1c2b7d04`
or `dbmigrate_tpl_orion_ref_0c1d2e3f4a5b`. It is built once per server by migrating (and seeding) a
scratch database and renaming it into place (so a half-built template is never visible), then
marked IS_TEMPLATE. Changing any migration changes the hash, so the next clone builds a new
template (keeping the newest three of each kind, for branches sharing a server); an unchanged set
reuses the template across runs. Builders on several processes (pytest-xdist) serialise on an
advisory lock in the `postgres` maintenance database, then re-check, so each is built once.

A clone is `CREATE DATABASE ... TEMPLATE`, a file copy inside the server: no migration runs. On
the test cluster (fsync off, see embedded.py; STRATEGY FILE_COPY there) that takes about 8 ms;
`ClonePool` takes even that
off the test's path: a background thread keeps a few clones of each template ready, a test takes
one from a queue (microseconds), and the thread makes the next one and drops used ones meanwhile.
Clones carry the pid of the process that made them, so the next pool on the same machine drops
those of processes that died.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from dbmigrate.commands import seed as seeder
from dbmigrate.core.config import DATABASES, Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.polling import poll
from dbmigrate.core.reporting import quiet
from dbmigrate.core.urls import with_database
from dbmigrate.engine import baselines, bookkeeping, executor, files
from dbmigrate.engine.target import Target
from dbmigrate.server import connection, embedded
from dbmigrate.server.connection import quote_identifier

TEMPLATE_PREFIX = "dbmigrate_tpl_"
CLONE_PREFIX = "dbmigrate_clone_"  # dbmigrate_clone_<database>_<pid>_<n>: made by a ClonePool
_BUILD_LOCK_KEY = int.from_bytes(b"dbtmplte", "big")
BUILT_COMMENT = "dbmigrate template built "
KEEP_TEMPLATES = 3  # of each kind per database: the current one and two older, for branches sharing a server
REFERENCE_ENVIRONMENT = "ci"  # the environment whose seeds are the reference data alone (seeder.KINDS)
DEFAULT_POOL_SIZE = 2  # ready clones per template per process
ACQUIRE_WAIT_SECONDS = 600.0  # the first clone may wait for a template build


def template_name(settings: Settings, database: Database, reference_data: bool = False) -> str:
    """Named after the migrations (and reference seeds) and the bookkeeping tables' layout: a change
    to any of them builds a new template."""
    migrations = files.discover(settings.project_root, database)
    baseline = baselines.find(settings.project_root, database)  # a new database runs it, when there is one
    migrations += [baseline] if baseline else []
    content = [
        bookkeeping.CREATE_PICCOLO_TABLE,
        bookkeeping.CREATE_HISTORY_TABLE,
        *(f"{m.id} {m.checksum}" for m in migrations),
    ]
    kind = ""
    if reference_data:
        kind = "ref_"
        for seed_file in seeder.discover(_reference_settings(settings), database):
            digest = hashlib.sha256(seed_file.path.read_bytes()).hexdigest()
            content.append(f"{seed_file.label(settings.project_root)} {digest}")
    return f"{TEMPLATE_PREFIX}{database.name}_{kind}{hashlib.sha256(chr(10).join(content).encode()).hexdigest()[:12]}"


async def ensure_template(settings: Settings, database: Database, reference_data: bool = False) -> str:
    """The name of an up-to-date template of `database`, building it if needed."""
    admin = await _admin(settings, database, f"template {database.name}")
    try:
        return await _ensure_template(settings, database, admin, reference_data)
    finally:
        await admin.close()


async def clone(settings: Settings, database: Database, new_name: str, reference_data: bool = False) -> str:
    """Create database `new_name` as a copy of the current template; return its URL."""
    admin = await _admin(settings, database, f"clone {database.name}")
    try:
        await _clone(settings, database, admin, new_name, reference_data)
    finally:
        await admin.close()
    return with_database(connection.server_url(settings, database), new_name)


async def drop(settings: Settings, database: Database, name: str) -> None:
    admin = await _admin(settings, database, "drop clone")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def _clone(
    settings: Settings, database: Database, admin: asyncpg.Connection, new_name: str, reference_data: bool
) -> None:
    strategy = await clone_strategy(admin)
    for attempt in (1, 2):
        template = await _ensure_template(settings, database, admin, reference_data)
        try:
            await admin.execute(
                f"CREATE DATABASE {quote_identifier(new_name)} TEMPLATE {quote_identifier(template)}{strategy}"
            )
            return
        except asyncpg.InvalidCatalogNameError:
            if attempt == 2:  # dropped as stale by a run of other code on this server, twice
                raise


async def clone_strategy(admin: asyncpg.Connection) -> str:
    """` STRATEGY FILE_COPY` on a server that does not flush (the test cluster: fsync off), where
    copying the template's files is twice as fast as WAL-logging every block (8 ms against 15 ms for
    orion's); nothing on a durable server, where FILE_COPY costs two checkpoints."""
    file_copy = await admin.fetchval(
        "SELECT current_setting('server_version_num')::int >= 150000 AND current_setting('fsync') = 'off'"
    )
    return " STRATEGY FILE_COPY" if file_copy else ""


async def _admin(settings: Settings, database: Database, purpose: str) -> asyncpg.Connection:
    return await connection.connect(settings, connection.server_url(settings, database), purpose)


async def _ensure_template(
    settings: Settings, database: Database, admin: asyncpg.Connection, reference_data: bool = False
) -> str:
    name = template_name(settings, database, reference_data)
    if await _exists(admin, name):
        return name

    async def timed_out() -> UserError:
        return UserError(
            f"{database.name}: another process has been building a template for over "
            f"{settings.lock_wait_seconds:g} s; retry, or raise ORION_MIGRATE_LOCK_WAIT"
        )

    await poll(
        lambda: admin.fetchval("SELECT pg_try_advisory_lock($1)", _BUILD_LOCK_KEY),
        settings.lock_wait_seconds,
        timed_out,
    )
    try:
        if not await _exists(admin, name):  # another process may have built it while we waited
            await _drop_abandoned_builds(admin)
            await _build(settings, database, admin, name, reference_data)
    finally:
        await admin.fetchval("SELECT pg_advisory_unlock($1)", _BUILD_LOCK_KEY)
    return name


async def _exists(admin: asyncpg.Connection, name: str) -> bool:
    return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def _build(
    settings: Settings, database: Database, admin: asyncpg.Connection, name: str, reference_data: bool
) -> None:
    scratch = f"{TEMPLATE_PREFIX}build_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE DATABASE {quote_identifier(scratch)}")
    try:
        scratch_url = with_database(connection.server_url(settings, database), scratch)
        with quiet():  # per-migration lines are noise in a test run
            await executor.migrate(Target.resolve(settings, database).with_url(scratch_url))
            if reference_data:
                conn = await connection.connect(settings, scratch_url, f"seed template {database.name}")
                try:
                    await seeder.seed_database(_reference_settings(settings), database, conn)
                finally:
                    await conn.close()
        await admin.execute(f"ALTER DATABASE {quote_identifier(scratch)} RENAME TO {quote_identifier(name)}")
        await admin.execute(f"ALTER DATABASE {quote_identifier(name)} WITH IS_TEMPLATE true")
        built = datetime.now(UTC).isoformat(timespec="seconds")
        await admin.execute(f"COMMENT ON DATABASE {quote_identifier(name)} IS '{BUILT_COMMENT}{built}'")
    except BaseException:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(scratch)} WITH (FORCE)")
        raise
    await _drop_stale(admin, database, keep=name, reference_data=reference_data)


def _reference_settings(settings: Settings) -> Settings:
    return replace(settings, environment=REFERENCE_ENVIRONMENT)


async def _drop_abandoned_builds(admin: asyncpg.Connection) -> None:
    """Scratch databases of builds whose process died. Safe: we hold the build lock, so none is live."""
    rows = await admin.fetch(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", f"{TEMPLATE_PREFIX}build_"
    )
    for row in rows:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(row['datname'])} WITH (FORCE)")


async def _drop_stale(admin: asyncpg.Connection, database: Database, keep: str, reference_data: bool) -> None:
    """Drop all but the newest few templates of this kind: other branches may share this server."""
    prefix = f"{TEMPLATE_PREFIX}{database.name}_{'ref_' if reference_data else ''}"
    rows = await admin.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database "
        "WHERE datname ~ $1 AND datname <> $2",
        f"^{re.escape(prefix)}[0-9a-f]{{12}}$",
        keep,
    )
    newest_first = sorted(rows, key=lambda r: r["comment"] or "", reverse=True)
    for row in newest_first[KEEP_TEMPLATES - 1 :]:
        stale = quote_identifier(row["datname"])
        await admin.execute(f"ALTER DATABASE {stale} WITH IS_TEMPLATE false")
        await admin.execute(f"DROP DATABASE IF EXISTS {stale} WITH (FORCE)")


# ---- The warm pool ----------------------------------------------------------------------------

_Key = tuple[str, bool]  # (database name, with reference data)


class ClonePool:
    """Ready clones of each template, made ahead by a background thread; see the module's docstring.

    `acquire` hands out a clone (waiting only when none is ready yet), `release` drops it in the
    background, `close` drops every clone this pool made that is still there: the ready ones, and
    those handed out and never released (a test interrupted by Ctrl-C). A release after `close`
    drops the clone at once. Thread-safe; one pool per process.
    """

    def __init__(self, settings: Settings, size: int = DEFAULT_POOL_SIZE):
        self.settings = settings
        self.size = max(1, size)
        self._server_url = connection.server_url(settings, DATABASES["orion"])
        self._ready: dict[_Key, queue.Queue[str]] = {}
        self._errors: dict[_Key, BaseException] = {}
        self._filling: set[_Key] = set()
        self._guard = threading.Lock()
        self._counter = 0
        self._made: set[str] = set()  # clones this pool created and has not dropped yet
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dbmigrate-clone-pool", daemon=True)
        self._thread.start()
        self._maker: asyncpg.Connection | None = None  # makes clones (and templates)
        self._dropper: asyncpg.Connection | None = None  # drops used clones, beside the maker
        self._drops: set[asyncio.Task] = set()
        self._call(self._open())

    def url(self, name: str) -> str:
        return with_database(self._server_url, name)

    def acquire(self, database: Database, reference_data: bool = False) -> str:
        """The name of a fresh clone of `database`'s template, now this caller's alone."""
        key = (database.name, reference_data)
        with self._guard:
            if self._closed:
                raise UserError("the test database pool is closed")
            ready = self._ready.setdefault(key, queue.Queue())
        deadline = time.monotonic() + ACQUIRE_WAIT_SECONDS
        while True:
            try:
                name = ready.get_nowait()
                break
            except queue.Empty:
                pass
            self._fill_soon(key)
            error = self._errors.pop(key, None)
            if error is not None:
                raise error
            if time.monotonic() > deadline:
                raise UserError(f"no {database.name} test database within {ACQUIRE_WAIT_SECONDS:g} s")
            try:
                name = ready.get(timeout=0.02)
                break
            except queue.Empty:
                continue
        self._fill_soon(key)  # make the next one while the test runs
        return name

    def release(self, name: str) -> None:
        """Drop a clone acquire handed out, in the background (at once when the pool is closed)."""
        with self._guard:
            closed = self._closed
            if not closed:
                self._loop.call_soon_threadsafe(self._drop_soon, name)
        if closed and name in self._made:
            asyncio.run(drop(self.settings, DATABASES["orion"], name))
            self._made.discard(name)

    def drain(self) -> None:
        """Wait until every released clone is dropped."""
        self._call(self._wait_for_drops())

    def close(self) -> None:
        """Drop the clones still ready and every released one, then stop the thread."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=60)
            self._loop.close()

    # -- on the pool's thread --

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _fill_soon(self, key: _Key) -> None:
        self._loop.call_soon_threadsafe(self._start_fill, key)

    def _start_fill(self, key: _Key) -> None:
        if key not in self._filling and not self._closed:
            self._filling.add(key)
            self._loop.create_task(self._fill(key))

    async def _open(self) -> None:
        self._make_turn, self._drop_turn = asyncio.Lock(), asyncio.Lock()
        self._maker = await connection.connect(self.settings, self._server_url, "test database pool")
        self._dropper = await connection.connect(self.settings, self._server_url, "test database pool drops")
        await self._drop_orphans()

    async def _fill(self, key: _Key) -> None:
        database, reference_data = DATABASES[key[0]], key[1]
        ready = self._ready[key]
        try:
            while ready.qsize() < self.size and not self._closed:
                with self._guard:
                    self._counter += 1
                    name = f"{CLONE_PREFIX}{database.name}_{os.getpid()}_{self._counter}"
                async with self._make_turn:
                    self._made.add(name)
                    await _clone(self.settings, database, self._maker, name, reference_data)
                ready.put(name)
        except BaseException as error:  # handed to the next acquire of this template
            self._errors[key] = error
        finally:
            self._filling.discard(key)

    def _drop_soon(self, name: str) -> None:
        task = self._loop.create_task(self._drop(name))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _drop(self, name: str) -> None:
        async with self._drop_turn:  # one statement at a time on a connection
            await self._dropper.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
        self._made.discard(name)

    async def _wait_for_drops(self) -> None:
        while self._drops:
            await asyncio.gather(*list(self._drops), return_exceptions=True)

    async def _shutdown(self) -> None:
        while self._filling:
            await asyncio.sleep(0.01)
        for ready in self._ready.values():
            while not ready.empty():
                ready.get_nowait()
        await self._wait_for_drops()
        for name in sorted(self._made):  # ready, or handed out and never released
            self._drop_soon(name)
        await self._wait_for_drops()
        for conn in (self._maker, self._dropper):
            if conn is not None:
                await conn.close()

    async def _drop_orphans(self) -> None:
        """Clones left by pools of processes on this machine that died (a Unix socket: same machine)."""
        host = urlsplit(self._server_url).hostname or dict(parse_qsl(urlsplit(self._server_url).query)).get("host")
        if not host or not host.startswith("/"):
            return
        rows = await self._dropper.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", CLONE_PREFIX)
        for row in rows:
            match = re.match(rf"^{CLONE_PREFIX}[a-z_]+?_(\d+)_\d+$", row["datname"])
            if match and not embedded.process_alive(int(match[1])):
                await self._drop(row["datname"])
