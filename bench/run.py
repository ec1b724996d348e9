"""Benchmarks: dbmigrate against the tools users would pick instead, and against floors, side by side.

Writes every figure to bench/RESULTS.md (date, machine, load, versions, every row) and prints the
same table. Always exits 0: benchmarks report, they do not gate (bench/verdicts.py decides each
target's verdict). See bench/README.md. Every database it creates is named bench_* and dropped at
the end, whatever happens; project copies live in a temporary folder that is removed too.

dbmigrate is driven only as a whole process (`python -m dbmigrate ...`); in-process, the bench uses
just the configuration, the embedded server, the PostgreSQL install and the test-database pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
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
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.dont_write_bytecode = True  # the test-database pool imports migration files in this process
sys.path[:0] = [str(HERE)]

import history  # noqa: E402
import live_rows  # noqa: E402
import peers  # noqa: E402
import verdicts  # noqa: E402
from harness import (  # noqa: E402
    APPS,
    BENCH_TABLE,
    CLI_TIMEOUT,
    Bench,
    Failed,
    admin,
    clone_pool_module,
    internals,
    log,
    median_side,
    run,
    schema_mismatch,
    short,
    side_of,
    with_database,
    write_csv,
)
from verdicts import TARGETS, Row, Side, failed, measured, no_such_command  # noqa: E402

# ---- the peers on the generated history ---------------------------------------------------------


@dataclass
class Tool:
    """How one tool migrates from empty, does nothing, and shows status, on database `dbname`."""

    name: str
    up: Callable[[str], float]
    noop: Callable[[str], float] | None = None
    status: Callable[[str], float] | None = None
    no_status: str = ""
    missing: str = ""
    from_empty: list[Side] = field(default_factory=list)
    noops: list[Side] = field(default_factory=list)
    statuses: list[Side] = field(default_factory=list)


def python_floor(bench: Bench, dbname: str) -> float:
    """A bare Python process: import asyncpg, connect, one query of the bookkeeping table."""
    code = (
        "import asyncio, sys, asyncpg\n"
        "async def main():\n"
        "    conn = await asyncpg.connect(sys.argv[1])\n"
        "    await conn.fetch('SELECT name FROM migration WHERE app_name = $1', 'rfq')\n"
        "    await conn.close()\n"
        "asyncio.run(main())\n"
    )
    return bench.timed(
        [sys.executable, "-c", code, bench.url(dbname)], env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    )


def peer_tools(bench: Bench, folder: Path, steps: list[history.Step], installed: dict[str, peers.Peer]) -> list[Tool]:
    """psql (the floor), dbmigrate and the three peers, each with its history written in its format."""
    floor = history.write_psql_floor(steps, folder / "psql.sql")
    dbmate_dir = history.write_dbmate(steps, folder / "dbmate" / "db" / "migrations")
    npm_dir = history.write_node_pg_migrate(steps, folder / "node-pg-migrate" / "migrations")
    alembic_dir = history.write_alembic(steps, folder / "alembic")
    project = bench.copy_project("peers_dbmigrate", empty=("rfq",))
    bench.import_dbmate(project, "rfq", dbmate_dir)

    def psql_up(db: str) -> float:
        return bench.timed(bench.psql_cmd(db, "-f", str(floor)))

    def ours(*args: str) -> Callable[[str], float]:
        return lambda db: bench.timed(bench.dbmigrate(*args), cwd=project, env=bench.env(rfq=db))

    tools = [
        Tool("psql", psql_up),
        Tool("dbmigrate", ours("migrate", "rfq"), ours("migrate", "rfq"), ours("status", "rfq")),
    ]

    dbmate = installed["dbmate"]
    dbmate_bin = str(peers.dbmate_binary())

    def dbmate_cmd(*args: str) -> Callable[[str], float]:
        # --no-dump-schema: dumping schema.sql after migrating (dbmate's default) is not migrating
        def go(db: str) -> float:
            env = peers.env_without_database({"DATABASE_URL": peers.dbmate_url(bench.url(db))})
            return bench.timed([dbmate_bin, "--no-dump-schema", *args], cwd=dbmate_dir.parent.parent, env=env)

        return go

    tools.append(
        Tool("dbmate", dbmate_cmd("migrate"), dbmate_cmd("migrate"), dbmate_cmd("status"), missing=dbmate.missing)
    )

    npm = installed["node-pg-migrate"]

    def npm_up(db: str) -> float:
        env = peers.env_without_database({"DATABASE_URL": peers.node_url(bench.url(db))})
        cmd = [str(peers.node_pg_migrate_bin()), "up", "-m", "migrations"]
        return bench.timed(cmd, cwd=npm_dir.parent, env=env)

    tools.append(
        Tool("node-pg-migrate", npm_up, npm_up, no_status="node-pg-migrate has no status command", missing=npm.missing)
    )

    alembic = installed["Alembic"]

    def alembic_cmd(*args: str) -> Callable[[str], float]:
        def go(db: str) -> float:
            extra = {"BENCH_ALEMBIC_URL": peers.sqlalchemy_url(bench.url(db)), "PYTHONDONTWRITEBYTECODE": "1"}
            return bench.timed(
                [str(peers.alembic_bin()), *args], cwd=alembic_dir, env=peers.env_without_database(extra)
            )

        return go

    tools.append(
        Tool(
            "Alembic",
            alembic_cmd("upgrade", "head"),
            alembic_cmd("upgrade", "head"),
            alembic_cmd("current"),
            missing=alembic.missing,
        )
    )
    return tools


def peer_rows(bench: Bench, installed: dict[str, peers.Peer]) -> list[Row]:
    steps = history.realistic(30 if bench.quick else 330)
    n, concurrent = len(steps), sum(s.concurrent for s in steps)
    folder = bench.scratch / "peers"
    tools = peer_tools(bench, folder, steps, installed)
    by_name = {tool.name: tool for tool in tools}
    reference: list[str] = []
    floor_noop: list[Side] = []

    def one_round(order: list[Tool], record: bool) -> None:
        for tool in order:
            if tool.missing:
                continue
            db = bench.create_db(f"p_{tool.name.replace('-', '_').lower()}")
            try:
                up = side_of(lambda t=tool, d=db: t.up(d))
                if up.measured:
                    schema = bench.schema(db, tool.name)
                    if tool.name == "psql":
                        reference[:] = [schema]
                    elif mismatch := schema_mismatch(reference[0], schema, tool.name):
                        up = failed(mismatch)
                noop = side_of(lambda t=tool, d=db: t.noop(d)) if tool.noop and up.measured else None
                status = side_of(lambda t=tool, d=db: t.status(d)) if tool.status and up.measured else None
                python = side_of(lambda d=db: python_floor(bench, d)) if tool.name == "dbmigrate" else None
            finally:
                bench.drop_db(db)
            if not up.measured:
                log(f"{tool.name}: {up.cell()}")
            if record:
                tool.from_empty.append(up)
                if noop is not None:
                    tool.noops.append(noop)
                if status is not None:
                    tool.statuses.append(status)
                if python is not None:
                    floor_noop.append(python)

    log(f"peers: {n} migrations ({concurrent} outside a transaction), {bench.runs} interleaved runs")
    if not bench.quick:
        one_round(tools, record=False)  # warm-up (disk caches, node's and Python's compiled files)
    for run_number in range(bench.runs):
        shift = run_number % (len(tools) - 1)
        order = [
            tools[0],
            *tools[1 + shift :],
            *tools[1 : 1 + shift],
        ]  # psql first (the reference), then A B C D, B C D A, ...
        one_round(order, record=True)

    def result(tool: Tool, runs: list[Side]) -> Side:
        if tool.missing:
            return failed(tool.missing)
        return median_side(runs)

    psql = median_side(by_name["psql"].from_empty)
    python = median_side(floor_noop)
    rows = []
    section = f"peers: a generated history of {n} migrations ({concurrent} non-transactional), from empty"
    psql_label = "psql, one session (floor)"
    for name in ("dbmigrate", "dbmate", "node-pg-migrate", "Alembic"):
        tool = by_name[name]
        target = TARGETS["from_empty_vs_psql"] if name == "dbmigrate" else None
        rows.append(Row(section, "from empty", name, result(tool, tool.from_empty), psql_label, psql, target))
    ours = result(by_name["dbmigrate"], by_name["dbmigrate"].from_empty)
    dbmate = result(by_name["dbmate"], by_name["dbmate"].from_empty)
    rows.append(Row(section, "from empty", "dbmigrate", ours, "dbmate", dbmate, TARGETS["from_empty_vs_dbmate"]))

    for kind, key in (("no-op", "noops"), ("status", "statuses")):
        section = f"peers: the same history with everything applied: {kind}"
        floor_label = "python -c 'import asyncpg' + 1 query (floor)"
        for name in ("dbmigrate", "dbmate", "node-pg-migrate", "Alembic"):
            tool = by_name[name]
            if kind == "status" and tool.no_status:
                side = no_such_command(tool.no_status)
            else:
                side = result(tool, getattr(tool, key))
            prefix = "noop" if kind == "no-op" else "status"
            target = TARGETS[f"{prefix}_vs_python"] if name == "dbmigrate" else None
            rows.append(Row(section, kind, name, side, floor_label, python, target))
        ours = result(by_name["dbmigrate"], getattr(by_name["dbmigrate"], key))
        for peer, target_key in (("node-pg-migrate", "node_pg_migrate"), ("Alembic", "alembic")):
            tool = by_name[peer]
            if kind == "status" and tool.no_status:
                side = no_such_command(tool.no_status)
            else:
                side = result(tool, getattr(tool, key))
            prefix = "noop" if kind == "no-op" else "status"
            rows.append(Row(section, kind, "dbmigrate", ours, peer, side, TARGETS[f"{prefix}_vs_{target_key}"]))
    return rows


# ---- 300 small migrations: the per-migration cost ----------------------------------------------


def small_migration_rows(bench: Bench) -> list[Row]:
    steps = history.small(30 if bench.quick else 300)
    n = len(steps)
    folder = history.write_dbmate(steps, bench.scratch / "small" / "dbmate")
    script = history.write_psql_floor(steps, bench.scratch / "small" / "psql.sql")
    fixed = history.write_psql_floor([], bench.scratch / "small" / "psql-fixed.sql")
    project = bench.copy_project("small", empty=("rfq",))
    bench.import_dbmate(project, "rfq", folder)
    ours_total, ours_noop, psql_total, psql_fixed = [], [], [], []
    for _ in range(bench.runs):
        ours, floor, floor0 = bench.create_db("s_ours"), bench.create_db("s_psql"), bench.create_db("s_psql0")
        try:
            env = bench.env(rfq=ours)
            ours_total.append(bench.timed(bench.dbmigrate("migrate", "rfq"), cwd=project, env=env))
            ours_noop.append(bench.timed(bench.dbmigrate("migrate", "rfq"), cwd=project, env=env))
            psql_total.append(bench.timed(bench.psql_cmd(floor, "-f", str(script))))
            psql_fixed.append(bench.timed(bench.psql_cmd(floor0, "-f", str(fixed))))
            tables = admin(bench.url(ours), "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_t_%'")
            assert tables == n, f"{tables} of {n} small migrations applied"
        finally:
            for db in (ours, floor, floor0):
                bench.drop_db(db)
    per = [(t - z) / n for t, z in zip(ours_total, ours_noop, strict=True)]
    floor_per = [(t - z) / n for t, z in zip(psql_total, psql_fixed, strict=True)]
    section = f"{n} small migrations (CREATE TABLE each), per migration"
    return [
        Row(
            section,
            "per migration, fixed costs subtracted (a no-op migrate; psql's connect)",
            "dbmigrate migrate rfq",
            measured(statistics.median(per)),
            "psql: BEGIN; stmt; bookkeeping INSERT; COMMIT",
            measured(statistics.median(floor_per)),
            TARGETS["per_migration_vs_psql"],
        ),
        Row(
            section,
            "per migration, whole process / n",
            "dbmigrate migrate rfq",
            measured(statistics.median(ours_total) / n),
            "psql -f, one session",
            measured(statistics.median(psql_total) / n),
        ),
    ]


# ---- the framework's own rows, each against a baseline doing the same work ---------------------


def dry_run_sql(bench: Bench, app: str) -> str:
    """The SQL `migrate <app>` would run on an empty database, as `--dry-run` prints it."""
    db = bench.create_db(f"dry_{app}")
    try:
        cmd = bench.dbmigrate("migrate", app, "--dry-run")
        result = subprocess.run(cmd, cwd=bench.project, env=bench.env(**{app: db}), capture_output=True, text=True)
        if result.returncode != 0:
            raise Failed(f"migrate {app} --dry-run exited {result.returncode}: {result.stderr.strip()[-200:]}")
        return result.stdout
    finally:
        bench.drop_db(db)


# Any Python that applies the apps' migration files imports at least these: the driver, and the
# Piccolo columns and Table their --auto descriptions use (orion's define Table classes).
MIGRATION_FILE_IMPORTS = "import asyncio, asyncpg, piccolo.columns, piccolo.table"


def migrate_all_rows(bench: Bench) -> list[Row]:
    """`migrate all` (three databases concurrently, one process) vs three `psql -1 -f` run concurrently."""
    files = {}
    for app in APPS:
        files[app] = bench.scratch / f"{app}.sql"
        files[app].write_text(dry_run_sql(bench, app))
    ours_ms, floor_ms, imports_ms = [], [], []
    for run_number in range(bench.runs):
        ours = {app: bench.create_db(f"m_{app}") for app in APPS}
        floor = {app: bench.create_db(f"f_{app}") for app in APPS}
        try:
            ours_ms.append(bench.timed(bench.dbmigrate("migrate", "all"), cwd=bench.project, env=bench.env(**ours)))
            imports_ms.append(bench.timed([sys.executable, "-c", MIGRATION_FILE_IMPORTS], cwd=bench.scratch))
            bench.settle()
            started = time.perf_counter()
            procs = [
                subprocess.Popen(bench.psql_cmd(floor[app], "-1", "-f", str(files[app])), stdout=subprocess.DEVNULL)
                for app in APPS
            ]
            codes = [proc.wait(CLI_TIMEOUT) for proc in procs]
            floor_ms.append((time.perf_counter() - started) * 1000)
            if any(codes):
                raise Failed(f"psql -1 -f exited {codes}")
            if run_number == 0:
                for app in APPS:
                    expected, actual = bench.schema(floor[app], "psql"), bench.schema(ours[app], "dbmigrate")
                    if mismatch := schema_mismatch(expected, actual, f"dbmigrate ({app})"):
                        raise Failed(mismatch)
        finally:
            for db in [*ours.values(), *floor.values()]:
                bench.drop_db(db)
    section, label, subject = (
        "the framework's rows",
        "migrate all 3 databases from empty",
        "migrate all (one process, concurrent)",
    )
    ours_median = measured(statistics.median(ours_ms))
    return [
        Row(
            section,
            label,
            subject,
            ours_median,
            "3 × psql -1 -f, concurrent",
            measured(statistics.median(floor_ms)),
            TARGETS["migrate_all_vs_psql"],
        ),
        Row(
            section,
            f"{label}, against the imports alone (why the row above fails)",
            subject,
            ours_median,
            "python -c: asyncpg and what the apps' migration files import (Piccolo's columns, Table)",
            measured(statistics.median(imports_ms)),
        ),
    ]


PLAIN_PICCOLO_CONF = '''"""Piccolo's configuration without dbmigrate: a plain PostgresEngine, no CLI installed."""

import os

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

DB = PostgresEngine(config={"dsn": os.environ["BENCH_PICCOLO_DSN"]})

APP_REGISTRY = AppRegistry(apps=%r)
'''


def piccolo_noop_rows(bench: Bench) -> list[Row]:
    """No-op `migrate orion` against Piccolo's own `migrations forwards orion`, our CLI not installed."""
    plain = bench.copy_project("plain_piccolo")
    apps = [f"{app}.piccolo_app" for app in APPS if (plain / app / "piccolo_app.py").exists()]
    (plain / "piccolo_conf.py").write_text(PLAIN_PICCOLO_CONF % apps)
    db = bench.create_db("pic")
    try:
        env = bench.env(orion=db)
        run(bench.dbmigrate("migrate", "orion"), cwd=bench.project, env=env)
        piccolo = [str(Path(sys.executable).parent / "piccolo"), "migrations", "forwards", "orion"]
        plain_env = {
            **env,
            "BENCH_PICCOLO_DSN": bench.url(db),
            "PYTHONPATH": f"{plain}{os.pathsep}{bench.package or bench.project}",
        }
        ours, theirs = [], []
        for _ in range(bench.runs):
            ours.append(bench.timed(bench.dbmigrate("migrate", "orion"), cwd=bench.project, env=env))
            theirs.append(bench.timed(piccolo, cwd=plain, env=plain_env))
    finally:
        bench.drop_db(db)
    return [
        Row(
            "the framework's rows",
            "no-op migrate orion (everything applied)",
            "dbmigrate migrate orion",
            measured(statistics.median(ours)),
            "piccolo migrations forwards orion (plain Piccolo)",
            measured(statistics.median(theirs)),
            TARGETS["noop_vs_piccolo"],
        )
    ]


def test_database_rows(bench: Bench) -> list[Row]:
    """Test databases under sustained demand, on the test cluster: `count` taken from the plugin's
    pool, used and released one after another (the pool refills and drops in the background),
    against CREATE DATABASE + orion's SQL (in-process, the least a migrate can do) + use + DROP."""
    config, embedded, _ = internals()
    templates = clone_pool_module()
    count = 20 if bench.quick else 200
    block = 10 if bench.quick else 25
    orion_sql = (bench.scratch / "orion.sql").read_text() if (bench.scratch / "orion.sql").exists() else None
    orion_sql = orion_sql or dry_run_sql(bench, "orion")
    settings = config.load_settings(bench.project)
    cluster = embedded.data_dir_for_tests(settings.embedded_data_root, settings.postgres_major)
    running, started_here = embedded.ensure_running(cluster, settings.postgres_major, for_tests=True)
    test_server = running.url("postgres")
    urls = {db.url_variable: with_database(test_server, db.default_dbname) for db in config.DATABASES.values()}
    settings = replace(settings, values={**settings.values, **urls})
    orion = config.DATABASES["orion"]
    pool = templates.ClonePool(settings)
    pool_ms: list[float] = []
    create_ms: list[float] = []
    expected_tables: list[int] = []

    async def use(url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename NOT IN ('migration', 'dbmigrate_history')"  # the pool's template has them
            )
            if expected_tables and tables != expected_tables[0]:
                raise Failed(f"a test database has {tables} tables, expected {expected_tables[0]}")
            expected_tables[:1] = [tables]
        finally:
            await conn.close()

    async def pooled(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            name = await asyncio.to_thread(pool.acquire, orion)
            await use(pool.url(name))
            pool.release(name)
        await asyncio.to_thread(pool.drain)  # the last drops are part of the bill
        return (time.perf_counter() - started) * 1000

    async def created(admin_conn: asyncpg.Connection, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            name = f"bench_tdb_{uuid.uuid4().hex[:8]}"
            await admin_conn.execute(f'CREATE DATABASE "{name}"')
            conn = await asyncpg.connect(with_database(test_server, name))
            try:
                await conn.execute(orion_sql)
            finally:
                await conn.close()
            await use(with_database(test_server, name))
            await admin_conn.execute(f'DROP DATABASE "{name}"')
        return (time.perf_counter() - started) * 1000

    async def measure() -> None:
        admin_conn = await asyncpg.connect(test_server)
        try:
            await created(admin_conn, 1)  # sets expected_tables
            pool.release(await asyncio.to_thread(pool.acquire, orion))  # builds the template, untimed
            await asyncio.to_thread(pool.drain)
            for _ in range(count // block):  # interleaved blocks
                pool_ms.append(await pooled(block))
                create_ms.append(await created(admin_conn, block))
        finally:
            await admin_conn.close()

    try:
        asyncio.run(measure())
    finally:
        pool.close()
        if started_here:
            embedded.stop(cluster)
    return [
        Row(
            "the framework's rows",
            f"{count} orion test databases one after another (test cluster, in-process), per test",
            "the plugin's pool (acquire, use, release; refill and drops included)",
            measured(sum(pool_ms) / count),
            "CREATE DATABASE + orion's SQL + use + DROP",
            measured(sum(create_ms) / count),
            TARGETS["test_db_pool"],
        )
    ]


def seed_rows(bench: Bench) -> list[Row]:
    """`seed marketdata` of a CSV: into an empty table (straight COPY) against `\\copy`, and into a table
    already holding half the rows (a staging table, then INSERT ... ON CONFLICT DO NOTHING) against
    psql doing exactly that in one session."""
    total = 2_000 if bench.quick else 100_000
    project = bench.copy_project("seed")
    step = history.Step("bench_instruments", BENCH_TABLE + ";\n", "DROP TABLE bench_instruments;\n")
    bench.import_dbmate(project, "marketdata", history.write_dbmate([step], bench.scratch / "seed_migration"))
    folder = project / "seeds" / "reference" / "marketdata"  # only our CSV: the copy has no other seeds
    folder.mkdir(parents=True)
    data = folder / "001_bench_instruments.csv"
    write_csv(data, range(total))
    half = bench.scratch / "half.csv"
    write_csv(half, range(0, total, 2))
    copy_in = "\\copy bench_instruments FROM '{}' WITH (FORMAT csv, HEADER true)"
    staged = [
        "CREATE TEMP TABLE stage (LIKE bench_instruments)",
        f"\\copy stage FROM '{data}' WITH (FORMAT csv, HEADER true)",
        "INSERT INTO bench_instruments SELECT * FROM stage ON CONFLICT DO NOTHING",
    ]
    results: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    for _ in range(bench.runs):
        for holding in (False, True):
            ours, floor = bench.create_db("d_ours"), bench.create_db("d_psql")
            try:
                env = bench.env(marketdata=ours)
                run(bench.dbmigrate("migrate", "marketdata"), cwd=project, env=env)
                run(bench.psql_cmd(floor, "-c", BENCH_TABLE))
                if holding:
                    for db in (ours, floor):
                        run(bench.psql_cmd(db, "-c", copy_in.format(half)))
                results[holding][0].append(bench.timed(bench.dbmigrate("seed", "marketdata"), cwd=project, env=env))
                if holding:
                    cmd = bench.psql_cmd(floor, *[arg for command in staged for arg in ("-c", command)])
                else:
                    cmd = bench.psql_cmd(floor, "-c", copy_in.format(data))
                results[holding][1].append(bench.timed(cmd))
                counts = {admin(bench.url(db), "SELECT count(*) FROM bench_instruments") for db in (ours, floor)}
                assert counts == {total}, f"loaded {counts} rows, expected {total}"
            finally:
                bench.drop_db(ours)
                bench.drop_db(floor)
    rows = []
    for holding, (ours_ms, floor_ms) in results.items():
        label = f"seed {total:,} CSV rows into a table " + ("holding half of them" if holding else "that is empty")
        baseline = "psql: temp table, \\copy, INSERT ON CONFLICT DO NOTHING" if holding else "psql \\copy"
        target = TARGETS["seed_holding_rows" if holding else "seed_empty"]
        rows.append(
            Row(
                "the framework's rows",
                label,
                "dbmigrate seed marketdata",
                measured(statistics.median(ours_ms)),
                baseline,
                measured(statistics.median(floor_ms)),
                target,
            )
        )
    return rows


def verify_rows(bench: Bench) -> list[Row]:
    """verify orion per migration, its fixed cost (verify of an empty history) subtracted: many
    migrations against a tenth as many, and a long history (4× many) against many. Linear means
    ratios near 1."""
    many = 20 if bench.quick else 300
    few, long = many // 10, many * 4
    counts = (0, few, many, long)
    copies = {}
    for count in counts:
        project = bench.copy_project(f"verify_{count}", empty=("orion",))
        (project / "orion" / "tables.py").write_text('"""No tables: the bench verifies SQL-only migrations."""\n')
        if count:
            folder = history.write_dbmate(history.small(count), bench.scratch / f"verify_src_{count}")
            bench.import_dbmate(project, "orion", folder)
        env = bench.env(orion=bench.create_db(f"v_{count}"))
        run(bench.dbmigrate("schema-dump", "orion"), cwd=project, env=env)  # this history's snapshot
        copies[count] = project, env
    times: dict[int, list[float]] = {count: [] for count in counts}
    for _ in range(min(bench.runs, 3)):
        for count in counts:
            project, env = copies[count]
            times[count].append(bench.timed(bench.dbmigrate("verify", "orion"), cwd=project, env=env))
    fixed = statistics.median(times[0])
    per = {count: (statistics.median(times[count]) - fixed) / count for count in counts if count}
    return [
        Row(
            "the framework's rows",
            f"verify orion per migration, verify of an empty history ({fixed:.0f} ms) subtracted",
            f"{subject} migrations",
            measured(per[subject]),
            f"{baseline} migrations",
            measured(per[baseline]),
            TARGETS[target],
        )
        for subject, baseline, target in ((many, few, "verify_linear"), (long, many, "verify_linear_long"))
    ]


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


def fleet_rows(bench: Bench) -> list[Row]:
    """A fleet (orion, rfq and marketdata in turn) migrated by one `migrate-fleet` process with
    --parallel 8 against --parallel 1: from empty (two fleets, one run each), then with nothing to do,
    directly and through a proxy adding a round trip of a millisecond or two (LatencyProxy)."""
    size = 6 if bench.quick else 100
    serial_dbs = [bench.create_db(f"fs_{n}") for n in range(size)]
    parallel_dbs = [bench.create_db(f"fp_{n}") for n in range(size)]
    env = bench.env()

    def fleet_file(tag: str, urls: list[str]) -> Path:
        path = bench.scratch / f"fleet_{tag}.txt"
        path.write_text("".join(f"{APPS[n % len(APPS)]} {url}\n" for n, url in enumerate(urls)))
        return path

    def migrate(path: Path, parallel: int) -> float:
        cmd = bench.dbmigrate("migrate-fleet", "--targets", str(path), "--parallel", str(parallel))
        return bench.timed(cmd, cwd=bench.project, env=env)

    def check(path: Path) -> None:
        """Every database holds each of its migrations once: status --check passes."""
        run(bench.dbmigrate("status", "--targets", str(path), "--check", "--parallel", "8"), bench.project, env)

    serial = fleet_file("s", [bench.url(name) for name in serial_dbs])
    parallel = fleet_file("p", [bench.url(name) for name in parallel_dbs])
    section = f"fleet of {size} databases, one migrate-fleet process"
    rows = [
        Row(
            section,
            "from empty",
            "--parallel 8",
            measured(migrate(parallel, 8)),
            "--parallel 1",
            measured(migrate(serial, 1)),
        )
    ]
    check(serial)
    check(parallel)
    few = min(bench.runs, 3)  # each run is two whole fleets: keep the bench short
    pairs = [(migrate(serial, 8), migrate(serial, 1)) for _ in range(few)]
    rows.append(
        Row(
            section,
            "no-op, loopback",
            "--parallel 8",
            measured(statistics.median(p[0] for p in pairs)),
            "--parallel 1",
            measured(statistics.median(p[1] for p in pairs)),
        )
    )
    with LatencyProxy(bench.server, rtt_ms=1) as proxy:
        remote = fleet_file("r", [proxy.url(name) for name in serial_dbs])
        rtt = proxy.round_trip_ms(serial_dbs[0])
        pairs = [(migrate(remote, 8), migrate(remote, 1)) for _ in range(few)]
    rows.append(
        Row(
            section,
            f"no-op, {rtt:.1f} ms round trip (proxy)",
            "--parallel 8",
            measured(statistics.median(p[0] for p in pairs)),
            "--parallel 1",
            measured(statistics.median(p[1] for p in pairs)),
            TARGETS["fleet_over_network"],
        )
    )
    for name in serial_dbs + parallel_dbs:
        bench.drop_db(name)
    return rows


# ---- robustness: a long history, a huge migration ------------------------------------------------


def native_templates(bench: Bench) -> tuple[str, str]:
    """The migration file `dbmigrate create` writes: transactional, and with --transaction 0."""
    project = bench.copy_project("templates", empty=("rfq",))
    texts = []
    for number, args in enumerate((["bench_template", "rfq"], ["bench_template_cic", "rfq", "--transaction", "0"]), 1):
        run(bench.dbmigrate("create", *args), project, bench.env())
        texts.append(next((project / "rfq" / "piccolo_migrations").glob(f"rfq_{number:03d}_*.py")).read_text())
    return texts[0], texts[1]


def long_history_rows(bench: Bench) -> list[Row]:
    """1,200 migrations from empty: 600 in dbmigrate's own format, then 600 imported from dbmate. Twice:
    the native ones numbered with 4 digits (so every ID has the importer's width), and as `create`
    numbers them (3 digits, then the importer's 4: IDs sort as text)."""
    count = 100 if bench.quick else 1200
    timeout = 60 if bench.quick else 300
    steps = history.realistic(count)[:count]
    native, imported = steps[: count // 2], steps[count // 2 :]
    plain, cic = native_templates(bench)
    source = history.write_dbmate(imported, bench.scratch / "long_dbmate", len(native))
    projects = {}
    for width in (len(str(count)), 3):
        if width in projects:
            continue
        project = bench.copy_project(f"long_{width}", empty=("rfq",))
        folder = project / "rfq" / "piccolo_migrations"
        for number, step in enumerate(native, 1):
            history.write_native(cic if step.concurrent else plain, [step], folder, "rfq", number, width)
        bench.import_dbmate(project, "rfq", source)
        projects[width] = project
    script = history.write_psql_floor(steps, bench.scratch / "long.sql")
    floor = bench.create_db("l_psql")
    rows = []
    try:
        baseline = side_of(lambda: bench.timed(bench.psql_cmd(floor, "-f", str(script)), timeout=timeout))
        for width, project in projects.items():
            ours = bench.create_db("l_ours")
            try:
                cmd = bench.dbmigrate("migrate", "rfq")
                subject = side_of(
                    lambda c=cmd, p=project, d=ours: bench.timed(c, cwd=p, env=bench.env(rfq=d), timeout=timeout)
                )
                if subject.measured and baseline.measured:
                    expected, actual = bench.schema(floor, "psql"), bench.schema(ours, "dbmigrate")
                    mismatch = schema_mismatch(expected, actual, "dbmigrate")
                    subject = failed(mismatch) if mismatch else subject
            finally:
                bench.drop_db(ours)
            label = f"{count} migrations from empty ({len(native)} native, {len(imported)} imported from dbmate)"
            label += f", native IDs of {width} digits" + (" (as `create` writes them)" if width == 3 else "")
            rows.append(
                Row("robustness", label + ", one run", "dbmigrate migrate rfq", subject, "psql, one session", baseline)
            )
    finally:
        bench.drop_db(floor)
    return rows


def huge_migration_rows(bench: Bench) -> list[Row]:
    """One migration of 200,000 INSERT statements (about 50 MB), imported from dbmate and applied."""
    rows_count = 2_000 if bench.quick else 200_000
    timeout = 60 if bench.quick else 300
    step = history.big_inserts(rows_count)
    size_mb = len(step.up.encode()) / 1e6
    project = bench.copy_project("huge", empty=("rfq",))
    source = history.write_dbmate([step], bench.scratch / "huge_dbmate")
    sql = bench.scratch / "huge.sql"
    sql.write_text(step.up)
    ours, floor = bench.create_db("h_ours"), bench.create_db("h_psql")
    note = ""
    try:
        baseline = side_of(lambda: bench.timed(bench.psql_cmd(floor, "-1", "-f", str(sql)), timeout=timeout))
        imported = side_of(lambda: bench.import_dbmate(project, "rfq", source, timeout=timeout))
        if imported.measured:
            cmd = bench.dbmigrate("migrate", "rfq")
            subject = side_of(lambda: bench.timed(cmd, cwd=project, env=bench.env(rfq=ours), timeout=timeout))
            note = f"the import took {imported.cell()} ms"
            if subject.measured:
                n = admin(bench.url(ours), "SELECT count(*) FROM bench_big")
                subject = subject if n == rows_count else failed(f"{n} of {rows_count} rows inserted")
        else:
            subject = replace(imported, error=f"import: {imported.error}") if imported.error else imported
            note = "the import did not finish, so nothing was migrated"
    finally:
        bench.drop_db(ours)
        bench.drop_db(floor)
    label = f"one migration of {rows_count:,} INSERTs ({size_mb:.0f} MB), timeout {timeout} s, one run"
    return [Row("robustness", label, "dbmigrate migrate rfq", subject, "psql -1 -f", baseline, note=note)]


# ---- the report ---------------------------------------------------------------------------------


def git_commit(path: Path) -> str:
    try:
        git = ["git", "-C", str(path)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "dbmigrate"], capture_output=True, text=True)
    except OSError:
        return "unknown"
    if not commit.stdout.strip():
        return "not a git checkout"
    return commit.stdout.strip() + (", with uncommitted changes under dbmigrate/" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(cmd: list[str]) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (result.stdout.strip() or result.stderr.strip()).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def report(
    bench: Bench,
    rows: list[Row],
    installed: dict[str, peers.Peer],
    server_version: str,
    load: tuple[tuple[float, ...], tuple[float, ...]],
    started: datetime,
    args: argparse.Namespace,
) -> str:
    mode = "--quick (smoke sizes)" if bench.quick else "full sizes"
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run.py`, described in `bench/README.md`); every figure quoted",
        "elsewhere comes from this file. Times are milliseconds of whole processes unless a row says",
        "otherwise; each cell is the median of the runs (A B A B ... interleaved).",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, {(datetime.now(UTC) - started).total_seconds():.0f} s; "
        f"{mode}, {bench.runs} runs per row" + (f" (--runs {args.runs})" if args.runs else ""),
        f"- machine: {os.cpu_count()} CPUs ({cpu_model()}), kernel {platform.system()} {platform.release()}",
        "- load average (1, 5, 15 min): before {}, after {}".format(
            ", ".join(f"{x:.2f}" for x in load[0]), ", ".join(f"{x:.2f}" for x in load[1])
        ),
        f"- PostgreSQL server: {server_version}",
        f"- psql and pg_dump: {tool_version([bench.psql, '--version'])}",
        f"- Python: {platform.python_version()} ({sys.executable})",
        f"- dbmigrate: the checkout at {bench.project} (commit {git_commit(bench.project)})",
        f"- node: {tool_version(['node', '--version'])}",
    ]
    for peer in installed.values():
        state = peer.version if peer.available else peer.missing
        lines.append(f"- {peer.name}: {state} (`{peer.installed_with}`, into bench/.cache/)")
    lines += ["", verdicts.table(rows), ""]
    return "\n".join(lines)


def server(project: Path) -> tuple[str, Path | None, Path]:
    """The configured server's maintenance URL, or the embedded one's (and its folder if we started it),
    and the folder of the pinned PostgreSQL build's programs (psql, pg_dump)."""
    config, embedded, install = internals()
    settings = config.load_settings(project)
    bin_dir = Path(install.ensure_installed(settings.postgres_major))
    if not settings.uses_embedded_server:
        return with_database(settings.url_for(config.DATABASES["orion"]), "postgres"), None, bin_dir
    running, started = embedded.ensure_running(settings.embedded_data_dir)
    return running.url("postgres"), settings.embedded_data_dir if started else None, bin_dir


SECTIONS: list[tuple[str, Callable[[Bench], list[Row]]]] = [
    ("small", small_migration_rows),
    ("migrate-all", migrate_all_rows),
    ("piccolo", piccolo_noop_rows),
    ("test-db", test_database_rows),
    ("seed", seed_rows),
    ("verify", verify_rows),
    ("trace", live_rows.trace_rows),
    ("fill", live_rows.fill_rows),
    ("batched", live_rows.batched_rows),
    ("fleet", fleet_rows),
    ("long", long_history_rows),
    ("huge", huge_migration_rows),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs per measurement (median); default 5, 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="smoke mode: fewer runs, small sizes (under a minute)")
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout whose dbmigrate is measured")
    parser.add_argument(
        "--results",
        type=Path,
        help="where to write the results; default bench/RESULTS.md for a full run of this checkout, "
        "bench/.cache/RESULTS-partial.md with --quick, --only or --project",
    )
    names = ["peers", *(name for name, _ in SECTIONS)]
    parser.add_argument("--only", action="append", choices=names, help="run only these sections (repeatable)")
    args = parser.parse_args()
    project = args.project.resolve()
    partial = args.quick or args.only or project != ROOT
    results = args.results or (peers.CACHE / "RESULTS-partial.md" if partial else HERE / "RESULTS.md")
    sys.path[:0] = [str(project)]
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    url, started_here, bin_dir = server(project)
    bench = Bench(
        server=url,
        project=project,
        runs=args.runs or (1 if args.quick else 5),
        quick=args.quick,
        scratch=Path(tempfile.mkdtemp(prefix="orion-bench-")),
        psql_bin=bin_dir,
    )
    rows: list[Row] = []

    def attempt(section: str, measure: Callable[[Bench], list[Row]]) -> None:
        if args.only and section not in args.only:
            return
        log(f"{section} ...")
        began = time.perf_counter()
        try:
            rows.extend(measure(bench))
        except Exception as error:  # one broken measurement must not hide the others
            log(f"{section}: {type(error).__name__}: {short(error)}")
            rows.append(Row(section, "could not be measured", "dbmigrate", failed(short(error)), "—", failed("—")))
        log(f"{section}: {time.perf_counter() - began:.0f} s")

    installed: dict[str, peers.Peer] = {}
    try:
        bench.install_package()
        server_version = admin(url, "SELECT version()")
        if not args.only or "peers" in args.only:
            log("installing the peers into bench/.cache (once) ...")
            installed = peers.install_all()
            for peer in installed.values():
                log(f"{peer.name}: {peer.version or peer.missing}")
        attempt("peers", lambda b: peer_rows(b, installed))
        for name, measure in SECTIONS:
            attempt(name, measure)
    finally:
        bench.cleanup()
        shutil.rmtree(bench.scratch, ignore_errors=True)
        if started_here:
            embedded = internals()[1]
            embedded.stop(started_here)
    text = report(bench, rows, installed, server_version, (load_before, os.getloadavg()), started, args)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text)
    print(text)
    log(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
