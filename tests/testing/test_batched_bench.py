"""The bench's measurement of batched updates against one UPDATE: rates of both on real tables,
every row updated exactly once (it checks), and nothing left behind in the database."""

from __future__ import annotations

import asyncio

from support import Databases

from dbmigrate.testing.batched_bench import batched_versus_single_update


def test_the_measurement_gives_both_rates_and_their_ratio_and_leaves_nothing_behind(dbs: Databases):
    result = asyncio.run(batched_versus_single_update(dbs.url("orion"), rows=20_000))
    assert result["rows"] == 20_000
    assert result["single_update_rows_per_second"] > 0 and result["batched_rows_per_second"] > 0
    assert result["ratio"] == round(result["batched_rows_per_second"] / result["single_update_rows_per_second"], 3)
    assert dbs.tables("orion") == {"dbmigrate_batches"}  # the progress table stays (empty); its tables go
    assert dbs.sql("orion", "SELECT count(*) AS n FROM dbmigrate_batches")[0]["n"] == 0
