"""The rehearsal's traffic: short reads and writes by primary key on the tables the pending
migrations touch, from CLIENTS connections, every query timed; and a sampler of lock waits.

The workload runs in a process of its own, as a service would, so the migration being measured
never waits for the workload's own Python work (`Workload` is its handle in the rehearsal; the
two share the monotonic clock, so the rehearsal asks it about any stretch of time). In it, each
client is an asyncio task on a connection of its own: it picks a table and one of a sample of its
primary keys, reads that row or writes one column of it back to itself, records when the query
started and how long it took, then pauses a moment (a busy service, not a benchmark). The sampler
reads pg_stat_activity every SAMPLE_SECONDS: how long the longest workload query waiting on a lock
has waited. Invariant: the workload changes no value (an UPDATE sets a column to itself), so the
migrations see the rows that were filled.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import multiprocessing
import random
import signal
import time
from array import array
from dataclasses import dataclass, field

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.engine.target import Target
from dbmigrate.server.connection import quote_identifier

KEYS_PER_TABLE = 1000
WRITE_SHARE = 0.5
PAUSE_SECONDS = 0.005
SAMPLE_SECONDS = 0.02
_RETRIED = (asyncpg.InvalidCachedStatementError, asyncpg.OutdatedSchemaCacheError)

_KEY_COLUMNS = """
SELECT a.attname::text FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)
"""
# A column to write back to itself: not a key, not generated, preferably in no index (a HOT update).
_WRITE_COLUMN = """
SELECT a.attname::text FROM pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND a.attidentity = '' AND a.attname::text <> ALL($2::text[])
ORDER BY EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND a.attnum = ANY(i.indkey)), a.attnum
LIMIT 1
"""
_LOCK_WAIT = """
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float8
FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND wait_event_type = 'Lock'
"""


@dataclass
class TableLoad:
    shown: str
    read_sql: str
    write_sql: str | None
    keys: list[tuple]
    write_refused: str | None = None  # why writes stopped (a trigger that refuses UPDATE)


@dataclass
class Timings:
    """One client's queries in the order they started: start time, duration (seconds), success."""

    started: array = field(default_factory=lambda: array("d"))
    seconds: array = field(default_factory=lambda: array("d"))
    ok: array = field(default_factory=lambda: array("b"))


@dataclass(frozen=True)
class Window:
    queries: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    longest_ms: float | None


async def prepare_tables(conn: asyncpg.Connection, tables: list[str]) -> tuple[list[TableLoad], list[str]]:
    """A TableLoad for each table with a primary key and rows; notes on the others."""
    loads, notes = [], []
    for table in tables:
        schema, _, name = table.rpartition(".")
        quoted = f"{quote_identifier(schema)}.{quote_identifier(name)}" if schema else quote_identifier(name)
        keys = [r[0] for r in await conn.fetch(_KEY_COLUMNS, quoted)]
        if not keys:
            notes.append(f"{table} has no primary key: the workload leaves it alone")
            continue
        columns = ", ".join(quote_identifier(k) for k in keys)
        sample = await conn.fetch(f"SELECT {columns} FROM {quoted} ORDER BY random() LIMIT {KEYS_PER_TABLE}")
        if not sample:
            notes.append(f"{table} is empty: the workload leaves it alone")
            continue
        where = " AND ".join(f"{quote_identifier(k)} = ${n}" for n, k in enumerate(keys, start=1))
        written = await conn.fetchval(_WRITE_COLUMN, quoted, keys)
        write_sql = None
        if written:
            column = quote_identifier(written)
            write_sql = f"UPDATE {quoted} SET {column} = {column} WHERE {where}"
        loads.append(TableLoad(table, f"SELECT * FROM {quoted} WHERE {where}", write_sql, [tuple(r) for r in sample]))
    return loads, notes


class _Clients:
    """CLIENTS clients and a sampler on `target`, in the workload's process."""

    def __init__(self, target: Target, tables: list[TableLoad], clients: int) -> None:
        self.target, self.tables, self.clients = target, tables, clients
        self.timings = [Timings() for _ in range(clients)]
        self.samples: tuple[array, array] = (array("d"), array("d"))  # (time, longest lock wait seconds)
        self._connections: list[asyncpg.Connection] = []
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    async def start(self) -> None:
        for _ in range(self.clients + 1):
            conn = await self.target.connect("rehearse workload")
            await conn.execute("SET statement_timeout = 0")  # a query waits as long as a migration blocks it
            self._connections.append(conn)
        pids = [c.get_server_pid() for c in self._connections[1:]]
        self._tasks = [asyncio.create_task(self._sample(self._connections[0], pids))]
        self._tasks += [
            asyncio.create_task(self._client(conn, timings, random.Random(n)))
            for n, (conn, timings) in enumerate(zip(self._connections[1:], self.timings, strict=True))
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        for conn in self._connections:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)
        self._connections.clear()

    async def _client(self, conn: asyncpg.Connection, timings: Timings, rng: random.Random) -> None:
        while not self._stopping:
            table = self.tables[rng.randrange(len(self.tables))]
            key = table.keys[rng.randrange(len(table.keys))]
            write = table.write_sql is not None and rng.random() < WRITE_SHARE
            started = time.monotonic()
            ok = await self._query(conn, table, table.write_sql if write else table.read_sql, key, write)
            timings.started.append(started)
            timings.seconds.append(time.monotonic() - started)
            timings.ok.append(ok)
            await asyncio.sleep(PAUSE_SECONDS)

    async def _query(self, conn: asyncpg.Connection, table: TableLoad, sql: str, key: tuple, write: bool) -> bool:
        for attempt in range(2):
            try:
                await (conn.execute(sql, *key) if write else conn.fetchrow(sql, *key))
                return True
            except _RETRIED:  # a migration changed the table under a prepared statement
                if attempt:
                    return False
            except asyncpg.UndefinedTableError:
                return False
            except asyncpg.PostgresError as error:
                if write and not isinstance(error, asyncpg.LockNotAvailableError | asyncpg.QueryCanceledError):
                    table.write_refused = str(error).splitlines()[0]  # e.g. an append-only trigger
                    table.write_sql = None
                return False
        return False

    async def _sample(self, conn: asyncpg.Connection, pids: list[int]) -> None:
        times, waits = self.samples
        while not self._stopping:
            try:
                waited = await conn.fetchval(_LOCK_WAIT, pids)
            except asyncpg.PostgresError:
                waited = 0.0
            times.append(time.monotonic())
            waits.append(waited)
            await asyncio.sleep(SAMPLE_SECONDS)

    def window(self, start: float, end: float, overlapping: bool = True) -> Window:
        """The queries running at some point in [start, end] (or, with overlapping=False, those
        that ended in it): how many, how many failed, p50/p99 and the longest, in milliseconds."""
        durations, errors = [], 0
        for timings in self.timings:
            # Queries start in order; none lasts longer than the statement_timeout the connection has.
            first = bisect.bisect_left(timings.started, start - 3600)
            last = bisect.bisect_right(timings.started, end)
            for index in range(first, last):
                begun, lasted = timings.started[index], timings.seconds[index]
                inside = begun + lasted >= start if overlapping else start <= begun + lasted <= end
                if inside:
                    durations.append(lasted)
                    errors += not timings.ok[index]
        if not durations:
            return Window(0, 0, None, None, None)
        durations.sort()
        pick = lambda share: durations[min(len(durations) - 1, int(share * len(durations)))] * 1000  # noqa: E731
        return Window(len(durations), errors, pick(0.5), pick(0.99), durations[-1] * 1000)

    def longest_sampled_wait_ms(self, start: float, end: float) -> float:
        times, waits = self.samples
        first, last = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        return max((waits[i] for i in range(first, last)), default=0.0) * 1000


class Workload:
    """The workload's process, started and stopped around the migrations, asked about its timings."""

    def __init__(self, target: Target, tables: list[TableLoad], clients: int) -> None:
        self.target, self.tables, self.clients = target, tables, clients
        self._process = None
        self._pipe = None

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop inherited
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(self.target, self.tables, self.clients, child), daemon=True
        )
        self._process.start()
        answer = await self._ask(None)
        if answer != "ready":
            await self.stop()
            raise UserError(f"the rehearsal's workload did not start: {answer}")

    async def window(self, start: float, end: float, overlapping: bool = True) -> Window:
        return await self._ask(("window", start, end, overlapping))

    async def longest_sampled_wait_ms(self, start: float, end: float) -> float:
        return await self._ask(("sampled", start, end))

    async def stop(self) -> None:
        """Stop the clients; `tables` then says which tables refused writes (and why)."""
        if self._process is None:
            return
        try:
            if self._process.is_alive():
                refused = await asyncio.wait_for(self._ask(("stop",)), 30)
                for table, why in zip(self.tables, refused, strict=True):
                    table.write_refused = why
        except (Exception, asyncio.CancelledError):
            pass
        finally:
            self._process.join(5)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
            self._process = None

    async def _ask(self, request):
        if request is not None:
            self._pipe.send(request)
        return await asyncio.to_thread(self._pipe.recv)


def _serve(target: Target, tables: list[TableLoad], clients: int, pipe) -> None:
    """The workload process: start, then answer the rehearsal's questions until it says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the rehearsal's to handle: it stops us
    asyncio.run(_answer(_Clients(target, tables, clients), pipe))


async def _answer(workload: _Clients, pipe) -> None:
    try:
        await workload.start()
    except Exception as error:
        pipe.send(str(error).splitlines()[0] if str(error) else type(error).__name__)
        return
    pipe.send("ready")
    try:
        while True:
            request = await asyncio.to_thread(pipe.recv)
            if request[0] == "window":
                pipe.send(workload.window(*request[1:]))
            elif request[0] == "sampled":
                pipe.send(workload.longest_sampled_wait_ms(*request[1:]))
            else:
                break
    except EOFError:  # the rehearsal went away
        pass
    finally:
        await workload.stop()
    with contextlib.suppress(OSError):
        pipe.send([table.write_refused for table in workload.tables])
