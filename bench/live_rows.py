"""The bench's rows for the live-database features, each against a baseline doing the same work in
the same process model: verify's lock trace (verify against `verify --trace 0`), the rehearsal's
fill (`fill_database`, one process, against one `psql \\copy` process loading as many rows of as
many columns into the same table), and a batched backfill (one process running both the batched
update and the single UPDATE on twin tables, `dbmigrate.testing.batched_bench`).

Invariant: every database is a `bench.create_db` one, dropped before the function returns, and
every side is a whole process timed by the harness (or, for the backfill, both sides timed inside
one process by the measured checkout's own code); row counts are checked after every fill.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import history
from harness import BENCH_TABLE, CLI_TIMEOUT, Bench, Failed, admin, median_side, run, write_csv
from verdicts import TARGETS, Row, at_rate, measured

SECTION = "the live-database features"
FILL_SCRIPT = """\
import asyncio, sys
import asyncpg
from dbmigrate.commands.fill import fill_database
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    try:
        result = await fill_database(conn, int(sys.argv[2]))
    finally:
        await conn.close()
    print(result.total)
asyncio.run(main())
"""


def trace_rows(bench: Bench) -> list[Row]:
    """`verify orion` (each first up applied by the lock trace, the default) against `verify orion
    --trace 0` (the executor; the safety check skipped), on the generated history (bench/history.py)
    as orion's only migrations (tables.py emptied, the snapshot regenerated first, untimed)."""
    steps = history.realistic(30 if bench.quick else 330)
    project = bench.copy_project("trace", empty=("orion",))
    (project / "orion" / "tables.py").write_text('"""No tables: the bench verifies SQL-only migrations."""\n')
    bench.import_dbmate(project, "orion", history.write_dbmate(steps, bench.scratch / "trace_src"))
    db = bench.create_db("trace")
    try:
        env = bench.env(orion=db)
        run(bench.dbmigrate("schema-dump", "orion"), cwd=project, env=env)
        traced, plain = [], []
        for _ in range(min(bench.runs, 3)):
            traced.append(bench.timed(bench.dbmigrate("verify", "orion"), cwd=project, env=env))
            plain.append(bench.timed(bench.dbmigrate("verify", "orion", "--trace", "0"), cwd=project, env=env))
    finally:
        bench.drop_db(db)
    return [
        Row(
            SECTION,
            f"verify orion of the generated history ({len(steps)} migrations): the lock trace's overhead",
            "verify orion (lock trace, the default)",
            measured(statistics.median(traced)),
            "verify orion --trace 0 (TRACE=0)",
            measured(statistics.median(plain)),
            TARGETS["verify_trace_overhead"],
        )
    ]


def fill_rows(bench: Bench) -> list[Row]:
    """`fill_database(conn, rows)` in a `python -c` process (generated rows, asyncpg's binary COPY,
    then ANALYZE) against one psql process: `\\copy` of a CSV of as many rows of the same 5 columns
    into the same table, then ANALYZE. Each run on two fresh databases holding only that table."""
    total = 5_000 if bench.quick else 1_000_000
    data = bench.scratch / "fill.csv"
    write_csv(data, range(total))  # untimed: the CSV is psql's input, as the catalog is the fill's
    copy_in = f"\\copy bench_instruments FROM '{data}' WITH (FORMAT csv, HEADER true)"
    fill_cmd = [sys.executable, "-c", FILL_SCRIPT]
    ours_ms, floor_ms = [], []
    for _ in range(min(bench.runs, 3)):
        ours, floor = bench.create_db("fill_ours"), bench.create_db("fill_psql")
        try:
            for db in (ours, floor):
                run(bench.psql_cmd(db, "-c", BENCH_TABLE))
            # cwd: not a checkout, so `import dbmigrate` finds the measured (byte-compiled) package
            ours_ms.append(bench.timed([*fill_cmd, bench.url(ours), str(total)], cwd=bench.scratch, env=bench.env()))
            floor_ms.append(bench.timed(bench.psql_cmd(floor, "-c", copy_in, "-c", "ANALYZE bench_instruments")))
            counts = {admin(bench.url(db), "SELECT count(*) FROM bench_instruments") for db in (ours, floor)}
            if counts != {total}:
                raise Failed(f"filled {counts} rows, expected {total}")
        finally:
            bench.drop_db(ours)
            bench.drop_db(floor)
    return [
        Row(
            SECTION,
            f"rehearsal fill of {total:,} rows into a 5-column table (uuid key, text, numeric, timestamptz, jsonb)",
            "fill_database (python -c: generate, binary COPY, ANALYZE)",
            measured(statistics.median(ours_ms)),
            "psql: \\copy of a CSV of as many rows, ANALYZE",
            measured(statistics.median(floor_ms)),
            TARGETS["fill_vs_psql_copy"],
        )
    ]


def batched_rows(bench: Bench) -> list[Row]:
    """`python -m dbmigrate.testing.batched_bench URL ROWS`: one process builds twin tables of ROWS rows,
    runs one `UPDATE ... SET n = n + 1` over the first and the batched backfill over the second, and
    prints both rates. The row compares times (rows / rate): batched ≥ 0.4× the single UPDATE's
    throughput is batched taking ≤ 2.5× its time."""
    total = 20_000 if bench.quick else 1_000_000
    batched_ms, single_ms = [], []
    for _ in range(min(bench.runs, 3)):
        db = bench.create_db("batched")
        try:
            bench.settle()
            cmd = [sys.executable, "-m", "dbmigrate.testing.batched_bench", bench.url(db), str(total)]
            result = subprocess.run(  # cwd: as the fill's
                cmd, cwd=bench.scratch, env=bench.env(), capture_output=True, text=True, timeout=CLI_TIMEOUT
            )
            if result.returncode != 0:
                tail = (result.stderr.strip().splitlines() or [""])[-1]
                raise Failed(f"batched_bench exited {result.returncode}: {tail[:200]}")
            rates = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            bench.drop_db(db)
        batched_ms.append(at_rate(total, rates["batched_rows_per_second"]))
        single_ms.append(at_rate(total, rates["single_update_rows_per_second"]))
    batched, single = median_side(batched_ms), median_side(single_ms)
    rates = ""
    if batched.measured and single.measured:
        rates = f"batched {total / batched.ms * 1000:,.0f} rows/s, single {total / single.ms * 1000:,.0f} rows/s"
    return [
        Row(
            SECTION,
            f"backfill of {total:,} rows, ms (throughput ≥ 0.4× the single UPDATE's is time ≤ 2.5×)",
            "batched backfill (short transactions, progress row)",
            batched,
            "one UPDATE of the whole table",
            single,
            TARGETS["batched_backfill"],
            note=rates,
        )
    ]
