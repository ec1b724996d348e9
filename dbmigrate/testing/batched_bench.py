"""A measurement for the benchmarks: rows per second of a batched update (engine/batches.py, as a
StagedMigration's batched_update runs it) against one UPDATE of the whole table.

`await batched_versus_single_update(url, rows)` builds two identical tables of `rows` rows on the
database at `url` (VACUUM ANALYZE'd), runs `UPDATE ... SET n = n + 1` once over the first and in
batches over the second (short transactions of about `batch_time` seconds, the progress row moved
in each, the rest between batches included), checks every row of both was updated exactly once,
drops both and returns the rates and their ratio. `python -m dbmigrate.testing.batched_bench URL
[ROWS]` prints the same as JSON. Invariant: it leaves nothing behind in the database.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import asyncpg

from dbmigrate.core.reporting import quiet
from dbmigrate.engine import batches, progress
from dbmigrate.engine.batches import BatchStage

APP = "bench"


async def batched_versus_single_update(url: str, rows: int = 1_000_000, batch_time: float = 0.05) -> dict:
    """{"rows", "single_update_rows_per_second", "batched_rows_per_second", "ratio"} (batched / single)."""
    suffix = uuid.uuid4().hex[:8]
    single, batched, migration_id = f"bench_single_{suffix}", f"bench_batched_{suffix}", f"bench_{suffix}"
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for table in (single, batched):
            await conn.execute(
                f"CREATE TABLE {table} (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, payload text); "
                f"INSERT INTO {table} (id, payload) SELECT g, md5(g::text) FROM generate_series(1, {rows}) g"
            )
            await conn.execute(f"VACUUM ANALYZE {table}")
        started = time.perf_counter()
        await conn.execute(f"UPDATE {single} SET n = n + 1")
        single_seconds = time.perf_counter() - started

        await progress.ensure_table(conn)
        await progress.batches_started(conn, APP, migration_id, "", 0, 1, rows)
        row = (await progress.read(conn, APP, migration_id))[migration_id]
        stage = BatchStage(table=batched, set="n = n + 1", batch_time=batch_time)

        async def no_fence() -> None:
            return None

        started = time.perf_counter()
        with quiet():
            await batches.run(batches.Job(conn, stage, APP, migration_id, 1, no_fence), row)
        batched_seconds = time.perf_counter() - started
        for table in (single, batched):
            wrong = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE n <> 1")
            assert wrong == 0, f"{wrong} rows of {table} were not updated exactly once"
    finally:
        await progress.forget(conn, APP, migration_id)
        for table in (single, batched):
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
    result = {
        "rows": rows,
        "single_update_rows_per_second": round(rows / single_seconds),
        "batched_rows_per_second": round(rows / batched_seconds),
    }
    result["ratio"] = round(result["batched_rows_per_second"] / result["single_update_rows_per_second"], 3)
    return result


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print("usage: python -m dbmigrate.testing.batched_bench URL [ROWS]", file=sys.stderr)
        raise SystemExit(2)
    measured = asyncio.run(
        batched_versus_single_update(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 1_000_000)
    )
    print(json.dumps(measured))
