"""Benchmarks: the framework against its baselines, measured side by side in one run.

Prints one markdown table (median of --runs runs per row) headed by the server's version, then how
many targets passed. Always exits 0: benchmarks report, they do not gate. See bench/README.md.
Every database it creates is named bench_* and dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # piccolo_conf (migrations import it)


from dbmigrate import embedded, executor, loader, postgres_install, template_databases  # noqa: E402
from dbmigrate.config import DATABASES, Database, load_settings  # noqa: E402
from dbmigrate.reporting import quiet  # noqa: E402
from dbmigrate.target import Target  # noqa: E402
from dbmigrate.testing import copy_project, write_sql_migration  # noqa: E402
from dbmigrate.urls import with_database  # noqa: E402

PICCOLO = str(Path(sys.executable).parent / "piccolo")
PSQL = str(postgres_install.ensure_installed(load_settings(ROOT).postgres_major) / "psql")  # the embedded build's
ORION, MARKETDATA = DATABASES["orion"], DATABASES["marketdata"]
BENCH_TABLE = "CREATE TABLE bench_instruments (id uuid PRIMARY KEY, symbol text, price numeric, listed_at timestamptz"
BENCH_TABLE += ", attrs jsonb)"
Pair = tuple[float, float]  # (framework ms, baseline ms) of one run


@dataclass
class Row:
    label: str
    framework_ms: float = float("nan")
    baseline_ms: float = float("nan")
    target: float | None = None  # the highest acceptable ratio; None: reported only
    error: str = ""

    @property
    def ratio(self) -> float:
        return self.framework_ms / self.baseline_ms

    @property
    def ok(self) -> str:
        if self.error:
            return "error"
        return "—" if self.target is None else ("yes" if self.ratio <= self.target else "NO")


@dataclass
class Bench:
    """The server, the sizes, and every bench_ database created (all dropped by `cleanup`)."""

    server: str  # URL of the maintenance database
    runs: int
    migrations: int  # small migrations added for rows 3 and 4
    seed_rows: int
    scratch: Path
    fleet_size: int = 100  # databases in the fleet rows
    created: set[str] = field(default_factory=set)

    def url(self, dbname: str) -> str:
        return with_database(self.server, dbname)

    def create_db(self, tag: str) -> str:
        name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
        self.created.add(name)
        admin(self.server, f'CREATE DATABASE "{name}"')
        return name

    def drop_db(self, name: str) -> None:
        assert name.startswith("bench_"), name
        if name.startswith("bench_tpl_"):  # a template must stop being one before it can be dropped
            admin(self.server, f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        admin(self.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.discard(name)

    def cleanup(self) -> None:
        for name in sorted(self.created):
            with contextlib.suppress(Exception):
                self.drop_db(name)

    def settle(self) -> None:
        """CHECKPOINT, so the writes of earlier CREATE/DROP DATABASEs do not land in the next timing."""
        admin(self.server, "CHECKPOINT")

    def timed(self, cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> float:
        self.settle()
        return run(cmd, cwd, env)

    def env(self, *dbs: str, **extra: str) -> dict[str, str]:
        """A CLI run's environment: the orion, rfq, marketdata databases (one name: all three are it)."""
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and not k.startswith("ORION_")}
        urls = {
            db.url_variable: self.url(name) for db, name in zip(DATABASES.values(), dbs * (3 // len(dbs)), strict=True)
        }
        # PYTHONDONTWRITEBYTECODE: write no __pycache__ into the project tree (migrations are imported).
        return {**env, **urls, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def admin(url: str, sql: str) -> str | int:
    async def go() -> str | int:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(sql) if sql.startswith("SELECT") else await conn.execute(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def run(cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> float:
    """Milliseconds the whole process `cmd` took; a failure stops the measurement with its stderr."""
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} exited {result.returncode}: {result.stderr.strip()[-300:]}")
    return elapsed_ms


def dbmigrate(*args: str) -> list[str]:
    return [sys.executable, "-m", "dbmigrate", *args]


def psql(url: str, *args: str) -> list[str]:
    return [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args]


def medians(bench: Bench, once: Callable[[], Pair]) -> Pair:
    """Run `once` --runs times; the median of each side."""
    pairs = [once() for _ in range(bench.runs)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def forwards_sql(database: Database) -> str:
    """The concatenated forwards SQL of `database`'s migrations, for `psql -1 -f`."""

    async def collect() -> list[str]:
        loaded = [await loader.load(m, ROOT) for m in loader.discover(ROOT, database)]
        assert all(m.transactional and m.statements() is not None for m in loaded), "SQL migrations only"
        return [statement.sql for m in loaded for statement in m.statements()]

    return "".join(f"{statement}\n;\n" for statement in asyncio.run(collect()))


def project_copy(bench: Bench, name: str) -> Path:
    """A copy of the project, as tests/conftest.py's `project` fixture makes it."""
    copy = bench.scratch / name
    copy.mkdir()
    return copy_project(copy)


def add_small_migrations(project: Path, count: int) -> tuple[str, list[str]]:
    """`count` one-table orion migrations after the existing ones: (last existing ID, their SQL)."""
    existing = loader.discover(project, ORION)
    first = (existing[-1].number or 0) + 1
    statements = [f"CREATE TABLE bench_t_{n} (id int)" for n in range(first, first + count)]
    for n, statement in enumerate(statements, first):
        write_sql_migration(project, "orion", f"{n:03d}_bench_t_{n}", statement, f"DROP TABLE bench_t_{n}")
    return existing[-1].id, statements


def migrate_from_empty(bench: Bench) -> Row:
    files = {db.name: bench.scratch / f"{db.name}.sql" for db in DATABASES.values()}
    for database in DATABASES.values():
        files[database.name].write_text(forwards_sql(database))

    def once() -> Pair:
        ours = [bench.create_db(f"m_{name}") for name in DATABASES]
        floor = {name: bench.create_db(f"p_{name}") for name in DATABASES}
        try:
            framework = bench.timed(dbmigrate("migrate", "all"), env=bench.env(*ours))
            bench.settle()  # then the three psql processes back to back
            baseline = sum(run(psql(bench.url(floor[name]), "-1", "-f", str(files[name]))) for name in DATABASES)
        finally:
            for name in [*ours, *floor.values()]:
                bench.drop_db(name)
        return framework, baseline

    return Row("migrate all 3 dbs from empty (process) vs psql -1 -f ×3", *medians(bench, once), target=3)


def noop_migrate(bench: Bench) -> Row:
    dbs = [bench.create_db(f"n_{name}") for name in DATABASES]
    env = bench.env(*dbs, ORION_DB="orion")
    run(dbmigrate("migrate", "all"), env=env)

    def once() -> Pair:
        framework = bench.timed(dbmigrate("migrate", "all"), env=env)
        return framework, bench.timed([PICCOLO, "migrations", "forwards", "orion"], env=env)

    row = Row("no-op migrate all (process) vs piccolo migrations forwards orion", *medians(bench, once), target=0.5)
    for name in dbs:
        bench.drop_db(name)
    return row


def small_migrations(bench: Bench) -> list[Row]:
    """Rows 3 and 4, on one project copy with `bench.migrations` one-table orion migrations added."""
    project = project_copy(bench, "many")
    before, statements = add_small_migrations(project, bench.migrations)
    # The baseline does what a migration costs at least: its own transaction, its statement and one
    # bookkeeping insert (psql, one process for all of them).
    script = bench.scratch / "small.sql"
    bookkeeping = "CREATE TABLE bench_applied (id serial PRIMARY KEY, name text NOT NULL, ran_on timestamptz)"
    script.write_text(
        f"{bookkeeping};\n"
        + "".join(
            f"BEGIN;\n{s};\nINSERT INTO bench_applied (name, ran_on) VALUES ('{n}', now());\nCOMMIT;\n"
            for n, s in enumerate(statements)
        )
    )
    n = len(statements)
    migrated: list[str] = []  # the last run's database, fully migrated, for the status row

    def apply_once() -> Pair:
        ours, floor = bench.create_db("a_ours"), bench.create_db("a_psql")
        try:
            run(dbmigrate("migrate", "orion", "--to", before), cwd=project, env=bench.env(ours))
            framework = bench.timed(dbmigrate("migrate", "orion"), cwd=project, env=bench.env(ours)) / n
            baseline = bench.timed(psql(bench.url(floor), "-f", str(script))) / n
            tables = admin(bench.url(ours), "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_t_%'")
            assert tables == n, f"{tables} of {n} small migrations applied"
        finally:
            bench.drop_db(floor)
            if migrated:
                bench.drop_db(migrated.pop())
            migrated.append(ours)
        return framework, baseline

    label = f"apply {n} small migrations (process), per migration vs psql: a transaction + bookkeeping insert each"
    apply = Row(label, *medians(bench, apply_once), target=1.5)

    few = project_copy(bench, "few")
    add_small_migrations(few, max(0, 3 - len(loader.discover(few, ORION))))
    few_db = bench.create_db("s_few")
    run(dbmigrate("migrate", "orion"), cwd=few, env=bench.env(few_db))

    def status_once() -> Pair:
        framework = bench.timed(dbmigrate("status", "orion"), cwd=project, env=bench.env(migrated[0]))
        return framework, bench.timed(dbmigrate("status", "orion"), cwd=few, env=bench.env(few_db))

    label = f"status orion (process): {len(loader.discover(project, ORION))} applied vs 3"
    status = Row(label, *medians(bench, status_once), target=1.2)
    bench.drop_db(few_db)
    bench.drop_db(migrated[0])
    return [status, apply]


def test_database(bench: Bench) -> list[Row]:
    """A fresh orion test database as the pytest plugin hands it out (the warm pool on the test
    cluster) against creating one and migrating it in the same process, on the same cluster."""
    settings = load_settings(ROOT)
    cluster = embedded.data_dir_for_tests(settings.embedded_data_root, settings.postgres_major)
    running, started_here = embedded.ensure_running(cluster, settings.postgres_major, for_tests=True)
    test_server = running.url("postgres")
    urls = {db.url_variable: with_database(test_server, db.default_dbname) for db in DATABASES.values()}
    settings = replace(settings, values={**settings.values, **urls})
    target = f"bench_t_migrated_{uuid.uuid4().hex[:8]}"
    target_settings = replace(
        settings, values={**settings.values, ORION.url_variable: with_database(test_server, target)}
    )
    clones = template_databases.ClonePool(settings)
    try:
        clones.release(clones.acquire(ORION))  # builds the template (untimed) and starts filling

        def warm() -> None:
            deadline = time.monotonic() + 30
            while clones._ready[(ORION.name, False)].qsize() < clones.size and time.monotonic() < deadline:
                time.sleep(0.005)  # a test runs longer than a refill takes
            clones.drain()  # and than dropping the previous test's database

        async def migrate_once(conn: asyncpg.Connection) -> float:
            await conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            with quiet():
                started = time.perf_counter()
                await conn.execute(f'CREATE DATABASE "{target}"')
                await executor.migrate(Target.resolve(target_settings, ORION))
                return (time.perf_counter() - started) * 1000

        async def clone_once(conn: asyncpg.Connection, template: str) -> float:
            name = f"bench_clone_{uuid.uuid4().hex[:8]}"
            strategy = await template_databases.clone_strategy(conn)  # as the pool clones
            started = time.perf_counter()
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
            elapsed = (time.perf_counter() - started) * 1000
            await conn.execute(f'DROP DATABASE "{name}"')
            return elapsed

        async def measure() -> tuple[list[float], list[float], list[float]]:
            conn = await asyncpg.connect(test_server)
            pool_ms, clone_ms, migrate_ms = [], [], []
            try:
                template = await template_databases.ensure_template(settings, ORION)
                for _ in range(bench.runs):
                    warm()
                    started = time.perf_counter()
                    name = clones.acquire(ORION)
                    pool_ms.append((time.perf_counter() - started) * 1000)
                    clones.release(name)
                    clone_ms.append(await clone_once(conn, template))
                    migrate_ms.append(await migrate_once(conn))
                await conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
            finally:
                await conn.close()
            return pool_ms, clone_ms, migrate_ms

        pool_ms, clone_ms, migrate_ms = asyncio.run(measure())
    finally:
        clones.close()
        if started_here:
            embedded.stop(cluster)
    baseline = statistics.median(migrate_ms)
    label = "fresh orion test db (in-process, test cluster): plugin's warm pool vs CREATE DATABASE + executor.migrate"
    pooled = Row(label, statistics.median(pool_ms), baseline, target=0.1)
    label = "fresh orion test db without the pool: CREATE DATABASE ... TEMPLATE vs CREATE DATABASE + executor.migrate"
    return [pooled, Row(label, statistics.median(clone_ms), baseline)]


def verify_scaling(bench: Bench) -> Row:
    """make db-verify of orion with many migrations against a tenth as many, per migration: linear
    means a ratio near 1."""
    few_count, many_count = bench.migrations // 10, bench.migrations

    def prepared(name: str, count: int) -> tuple[Path, dict[str, str], int]:
        project = project_copy(bench, name)
        add_small_migrations(project, count - len(loader.discover(project, ORION)))
        env = bench.env(bench.create_db(f"v_{name}"))
        run(dbmigrate("schema-dump", "orion"), cwd=project, env=env)  # the snapshot of this history
        return project, env, len(loader.discover(project, ORION))

    few, few_env, few_n = prepared("verify_few", few_count)
    many, many_env, many_n = prepared("verify_many", many_count)

    def once() -> Pair:
        framework = bench.timed(dbmigrate("verify", "orion"), cwd=many, env=many_env) / many_n
        return framework, bench.timed(dbmigrate("verify", "orion"), cwd=few, env=few_env) / few_n

    label = f"make db-verify orion (process), per migration: {many_n} migrations vs {few_n}"
    return Row(label, *medians(replace(bench, runs=min(bench.runs, 3)), once), target=1.5)


def write_csv(path: Path, rows: int) -> None:
    """`rows` instruments, the same every run (ids are UUIDv5 of the row number)."""
    namespace = uuid.UUID("5e681040-bdf9-4c34-bc5b-0209d9207add")
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "symbol", "price", "listed_at", "attrs"])
        for i in range(rows):
            attrs = f'{{"lot": {1 + i % 100}, "tags": ["bench", "t{i % 7}"], "venue": "X{i % 13:03d}"}}'
            price = f"{(i * 7919) % 100000 / 100:.2f}"
            listed = (epoch + timedelta(minutes=i)).isoformat()
            writer.writerow([uuid.uuid5(namespace, f"bench:{i}"), f"SYM{i:06d}", price, listed, attrs])


def seed_rows(bench: Bench) -> Row:
    project = project_copy(bench, "seed")
    number = (loader.discover(project, MARKETDATA)[-1].number or 0) + 1
    write_sql_migration(
        project, "marketdata", f"{number:03d}_bench_instruments", BENCH_TABLE, "DROP TABLE bench_instruments"
    )
    folder = project / "seeds" / "reference" / "marketdata"  # only our CSV: the copy has no other seeds
    folder.mkdir(parents=True)
    data = folder / "001_bench_instruments.csv"
    write_csv(data, bench.seed_rows)
    copy_command = f"\\copy bench_instruments FROM '{data}' WITH (FORMAT csv, HEADER true)"

    def once() -> Pair:
        ours, floor = bench.create_db("d_ours"), bench.create_db("d_psql")
        try:
            env = bench.env(ours, ORION_ENV="test")
            run(dbmigrate("migrate", "marketdata"), cwd=project, env=env)
            run(psql(bench.url(floor), "-c", BENCH_TABLE))
            framework = bench.timed(dbmigrate("seed", "marketdata"), cwd=project, env=env)
            baseline = bench.timed(psql(bench.url(floor), "-c", copy_command))
            counts = {admin(bench.url(db), "SELECT count(*) FROM bench_instruments") for db in (ours, floor)}
            assert counts == {bench.seed_rows}, f"loaded {counts} rows, expected {bench.seed_rows}"
        finally:
            bench.drop_db(ours)
            bench.drop_db(floor)
        return framework, baseline

    return Row(f"seed {bench.seed_rows:,} CSV rows (process) vs psql \\copy", *medians(bench, once), target=2)


class LatencyProxy:
    """A TCP proxy on loopback to the bench server that holds every chunk `rtt_ms / 2` in each direction:
    a fleet's servers are elsewhere on the network, and only this bench's own traffic goes through it."""

    def __init__(self, server_url: str, rtt_ms: float) -> None:
        parts = urlsplit(server_url)
        query = dict(parse_qsl(parts.query))
        self.host = parts.hostname or query.get("host", "/tmp")
        self.port = parts.port or int(query.get("port", 5432))
        self.user = unquote(parts.username or "postgres")
        self.delay = rtt_ms / 2000
        self.loop = asyncio.new_event_loop()
        self.listening: asyncio.AbstractServer | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self.thread.start()
        start = asyncio.start_server(self._client, "127.0.0.1", 0)
        self.listening = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        async def stop() -> None:
            self.listening.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def url(self, dbname: str) -> str:
        port = self.listening.sockets[0].getsockname()[1]
        return f"postgresql://{quote(self.user)}@127.0.0.1:{port}/{dbname}"

    def round_trip_ms(self, dbname: str) -> float:
        """The round trip through the proxy as a query sees it (asyncio's timers add to the nominal delay)."""

        async def measure() -> float:
            conn = await asyncpg.connect(self.url(dbname))
            try:
                times = []
                for _ in range(30):
                    started = time.perf_counter()
                    await conn.execute("SELECT 1")  # one message each way
                    times.append((time.perf_counter() - started) * 1000)
                return statistics.median(times)
            finally:
                await conn.close()

        return asyncio.run(measure())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.host.startswith("/"):
            upstream = await asyncio.open_unix_connection(f"{self.host}/.s.PGSQL.{self.port}")
        else:
            upstream = await asyncio.open_connection(self.host, self.port)
        await asyncio.gather(self._pipe(reader, upstream[1]), self._pipe(upstream[0], writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward in order, each chunk `delay` after it arrived (chunks in flight overlap, as on a wire)."""
        queue: asyncio.Queue = asyncio.Queue()

        async def send() -> None:
            while (item := await queue.get()) is not None:
                await asyncio.sleep(max(0.0, item[0] - time.monotonic()))
                writer.write(item[1])
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, data))
        finally:
            queue.put_nowait(None)
            await sender


def fleet(bench: Bench) -> list[Row]:
    """A fleet of `bench.fleet_size` databases (orion, rfq and marketdata in turn) on the server, migrated
    by one `migrate-fleet` process with PARALLEL=8 against the same with PARALLEL=1: from empty (two
    fleets of empty databases, one run each), then with nothing to do (median of --runs, alternating),
    directly and through a proxy adding a round trip of a millisecond or two (LatencyProxy)."""
    kinds = list(DATABASES)
    size = bench.fleet_size
    serial_dbs = [bench.create_db(f"fs_{n}") for n in range(size)]
    parallel_dbs = [bench.create_db(f"fp_{n}") for n in range(size)]
    env = bench.env(serial_dbs[0])

    def fleet_file(tag: str, urls: list[str]) -> Path:
        path = bench.scratch / f"fleet_{tag}.txt"
        path.write_text("".join(f"{kinds[n % len(kinds)]} {url}\n" for n, url in enumerate(urls)))
        return path

    def migrate(path: Path, parallel: int) -> float:
        return bench.timed(dbmigrate("migrate-fleet", "--targets", str(path), "--parallel", str(parallel)), env=env)

    serial = fleet_file("s", [bench.url(name) for name in serial_dbs])
    parallel = fleet_file("p", [bench.url(name) for name in parallel_dbs])
    empty = Row(f"fleet of {size} dbs from empty (process): PARALLEL=8 vs PARALLEL=1", migrate(parallel, 8))
    empty.baseline_ms = migrate(serial, 1)
    for path in (serial, parallel):  # every database migrated, each migration once
        fields = path.read_text().split()
        applied = [admin(url, "SELECT count(*) FROM migration") for url in fields[1::2]]
        assert applied == [len(loader.discover(ROOT, DATABASES[kind])) for kind in fields[::2]], applied
    few = replace(bench, runs=min(bench.runs, 3))  # each run is two whole fleets: keep the bench short
    noop = Row(
        f"fleet of {size} dbs, no-op (process): PARALLEL=8 vs PARALLEL=1",
        *medians(few, lambda: (migrate(serial, 8), migrate(serial, 1))),
    )
    with LatencyProxy(bench.server, rtt_ms=1) as proxy:
        remote = fleet_file("r", [proxy.url(name) for name in serial_dbs])
        rtt = proxy.round_trip_ms(serial_dbs[0])
        label = f"fleet of {size} dbs, no-op (process), {rtt:.1f} ms round trip: PARALLEL=8 vs PARALLEL=1"
        over_network = Row(label, *medians(few, lambda: (migrate(remote, 8), migrate(remote, 1))), target=0.33)
    return [empty, noop, over_network]


def print_table(version: str, rows: list[Row]) -> None:
    def ms(value: float) -> str:
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"

    print(f"{version}\n\n| measurement | framework (ms) | baseline (ms) | ratio | target | ok |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for row in rows:
        target = "—" if row.target is None else f"≤ {row.target:g}"
        if row.error:
            cells = ["—", "—", "—", target, f"error: {row.error}"]
        else:
            cells = [ms(row.framework_ms), ms(row.baseline_ms), f"{row.ratio:.2f}", target, row.ok]
        print(f"| {row.label} | {' | '.join(cells)} |")
    gated = [r for r in rows if r.target is not None]
    print(f"\n{sum(r.ok == 'yes' for r in gated)} of {len(gated)} targets passed")


def server() -> tuple[str, Path | None]:
    """The configured server's maintenance URL, or the embedded one's (and its folder if we started it)."""
    settings = load_settings(ROOT)
    if not settings.uses_embedded_server:
        return with_database(settings.url_for(ORION), "postgres"), None
    running, started = embedded.ensure_running(settings.embedded_data_dir)
    return running.url("postgres"), settings.embedded_data_dir if started else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs per measurement (median); default 5, 2 with --quick")
    parser.add_argument("--quick", action="store_true", help="smoke mode: fewer runs, smaller sizes")
    args = parser.parse_args()
    url, started_here = server()
    bench = Bench(
        server=url,
        runs=args.runs or (2 if args.quick else 5),
        migrations=50 if args.quick else 300,
        seed_rows=10_000 if args.quick else 100_000,
        scratch=Path(tempfile.mkdtemp(prefix="orion-bench-")),
        fleet_size=20 if args.quick else 100,
    )
    rows: list[Row] = []

    def attempt(label: str, measure: Callable[[Bench], Row | list[Row]]) -> None:
        try:
            result = measure(bench)
            rows.extend(result if isinstance(result, list) else [result])
        except Exception as error:  # one broken measurement must not hide the others
            last_line = (str(error).strip().splitlines() or [""])[-1][:200]
            rows.append(Row(label, error=f"{type(error).__name__}: {last_line}"))

    try:
        version = admin(url, "SELECT version()")
        attempt("migrate all from empty", migrate_from_empty)
        attempt("no-op migrate all", noop_migrate)
        attempt("status orion / apply small migrations", small_migrations)
        attempt("fresh test db from the pool", test_database)
        attempt("verify at many migrations vs few", verify_scaling)
        attempt("seed CSV rows", seed_rows)
        attempt("fleet PARALLEL=8 vs 1", fleet)
        print_table(version, rows)
    finally:
        bench.cleanup()
        shutil.rmtree(bench.scratch, ignore_errors=True)
        if started_here:
            embedded.stop(started_here)
    return 0


if __name__ == "__main__":
    sys.exit(main())
