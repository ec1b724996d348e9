"""The bench's verdict logic on made-up timings: each target row can fail and can pass.

No server and no timing of this machine: bench/verdicts.py is pure. It is loaded from its path
(bench/ is not a package, and a tests/bench package would shadow it).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "bench" / "verdicts.py"
spec = importlib.util.spec_from_file_location("bench_verdicts", PATH)
verdicts = importlib.util.module_from_spec(spec)
sys.modules["bench_verdicts"] = verdicts  # dataclasses look their module up
spec.loader.exec_module(verdicts)

T = verdicts.TARGETS
ms = verdicts.measured

# (target, subject ms that passes, subject ms that fails, baseline ms)
CASES = {
    "from_empty_vs_psql": (700, 760, 600),  # ≤ 1.25 × 600 = 750
    "from_empty_vs_dbmate": (800, 830, 820),
    "noop_vs_python": (150, 200, 130),  # ≤ 169
    "noop_vs_node_pg_migrate": (180, 420, 420),  # equal is not faster
    "noop_vs_alembic": (180, 600, 580),
    "status_vs_python": (160, 170, 130),
    "status_vs_node_pg_migrate": (180, 500, 420),
    "status_vs_alembic": (180, 600, 540),
    "per_migration_vs_psql": (1.5, 2.49, 1.25),
    "migrate_all_vs_psql": (250, 330, 100),
    "noop_vs_piccolo": (150, 250, 400),
    "test_db_pool": (20, 30, 50),
    "seed_empty": (500, 600, 268),
    "seed_holding_rows": (500, 900, 300),
    "verify_linear": (60, 120, 61),
    "verify_linear_long": (45, 46, 30),  # ≤ 1.5 × 30 = 45 ms per migration
    "verify_trace_overhead": (12900, 13100, 10000),  # ≤ 1.3 × 10 s
    "fill_vs_psql_copy": (12500, 12600, 10000),  # ≤ 1.25 × psql's time: at least 0.8× its speed
    "batched_backfill": (5000, 5300, 2000),  # ≤ 2.5 × the single UPDATE's time
    "fleet_over_network": (700, 1200, 3354),
}


def test_every_target_has_a_case():
    assert set(CASES) == set(T)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_target_can_pass_and_fail(name):
    passing, failing, baseline = CASES[name]
    assert verdicts.verdict(ms(passing), ms(baseline), T[name]).status == verdicts.PASS
    assert verdicts.verdict(ms(failing), ms(baseline), T[name]).status == verdicts.FAIL


def test_batched_backfill_needs_four_tenths_of_the_single_updates_throughput():
    """1,000,000 rows; one UPDATE at 500,000 rows/s: batched at 200,000 rows/s (0.4×) passes, at
    190,000 rows/s (0.38×) fails."""
    single = verdicts.at_rate(1_000_000, 500_000)
    assert single.ms == pytest.approx(2000)
    target = T["batched_backfill"]
    assert verdicts.verdict(verdicts.at_rate(1_000_000, 200_000), single, target).status == verdicts.PASS
    assert verdicts.verdict(verdicts.at_rate(1_000_000, 190_000), single, target).status == verdicts.FAIL
    assert verdicts.at_rate(1_000_000, 0).error


def test_ratio_limit_is_inclusive_and_faster_is_strict():
    assert verdicts.verdict(ms(125), ms(100), verdicts.at_most(1.25)).status == verdicts.PASS
    assert verdicts.verdict(ms(125.01), ms(100), verdicts.at_most(1.25)).status == verdicts.FAIL
    assert verdicts.verdict(ms(100), ms(100), verdicts.faster_than("dbmate")).status == verdicts.FAIL
    assert verdicts.verdict(ms(99.9), ms(100), verdicts.faster_than("dbmate")).status == verdicts.PASS


def test_a_missing_peer_leaves_the_target_unverified_and_not_passed():
    missing = verdicts.failed("not installed: npm install exited 1")
    row = verdicts.Row("s", "no-op", "dbmigrate", ms(100), "dbmate", missing, T["from_empty_vs_dbmate"])
    assert row.verdict.status == verdicts.UNVERIFIED
    assert "not installed" in str(row.verdict)
    assert math.isnan(row.ratio)
    assert verdicts.summary([row]) == (0, 1)


def test_a_peer_without_the_command_is_not_counted():
    none = verdicts.no_such_command("node-pg-migrate has no status command")
    row = verdicts.Row("s", "status", "dbmigrate", ms(100), "node-pg-migrate", none, T["status_vs_node_pg_migrate"])
    assert row.verdict.status == verdicts.NOT_APPLICABLE
    assert verdicts.summary([row]) == (0, 0)


def test_a_subject_that_times_out_fails_and_one_that_errors_is_an_error():
    target = verdicts.at_most(1.25)
    assert verdicts.verdict(verdicts.timed_out(120), ms(900), target).status == verdicts.FAIL
    assert verdicts.verdict(verdicts.timed_out(120), verdicts.failed("x"), target).status == verdicts.FAIL
    assert verdicts.verdict(verdicts.failed("exited 1: boom"), ms(900), target).status == verdicts.ERROR


def test_rows_without_a_target_are_reported_only_and_not_counted():
    row = verdicts.Row("s", "fleet", "PARALLEL=8", ms(100), "PARALLEL=1", ms(300))
    assert row.verdict.status == verdicts.REPORTED
    assert row.ratio == pytest.approx(1 / 3)
    assert verdicts.summary([row]) == (0, 0)


def test_summary_and_table():
    rows = [
        verdicts.Row("peers", "from empty", "dbmigrate", ms(700), "psql", ms(600), T["from_empty_vs_psql"]),
        verdicts.Row("peers", "from empty", "dbmigrate", ms(800), "dbmate", ms(820), T["from_empty_vs_dbmate"]),
        verdicts.Row("peers", "big", "dbmigrate", verdicts.timed_out(120), "psql -1 -f", ms(3000)),
    ]
    assert verdicts.summary(rows) == (2, 2)
    text = verdicts.table(rows)
    assert "timed out after 120 s" in text
    assert text.rstrip().endswith("2 of 2 targets passed")
    assert "| **peers** |" in text
