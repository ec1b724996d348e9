"""The bench's verdicts: pure functions of timings, so each target can be shown to pass and to fail
on made-up numbers (tests/bench/test_verdicts.py) without a server or a timing of the machine.

A row compares a subject (dbmigrate, usually) with a baseline: a floor (psql, a bare Python
process) or a peer (dbmate, node-pg-migrate, Alembic). Its target is one of:

  * `at_most(x)`: the subject takes at most x times the baseline (ratio ≤ x);
  * `faster_than(peer)`: the subject takes less time than the peer (ratio < 1);
  * None: reported only.

The verdict is PASS or FAIL when both sides were measured. A subject that timed out against a
target FAILS (too slow is the one thing a target forbids); a subject that errored is ERROR; a
baseline that could not be measured (a peer that is not installed, or a floor that failed) leaves
the target UNVERIFIED, which is counted and never passes. A target that cannot apply (the peer has
no such command) is N/A and not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PASS, FAIL, ERROR, UNVERIFIED, NOT_APPLICABLE, REPORTED = "pass", "FAIL", "error", "unverified", "n/a", "—"
COUNTED = (PASS, FAIL, ERROR, UNVERIFIED)  # verdicts of a target that counts in "N of M passed"


@dataclass(frozen=True)
class Target:
    kind: str  # "ratio" or "faster"
    limit: float = 1.0  # the highest acceptable ratio ("faster": below 1)
    peer: str = ""  # for "faster": whom to beat

    def __str__(self) -> str:
        return f"≤ {self.limit:g}×" if self.kind == "ratio" else f"faster than {self.peer}"

    def met(self, ratio: float) -> bool:
        return ratio <= self.limit if self.kind == "ratio" else ratio < 1


def at_most(limit: float) -> Target:
    return Target("ratio", limit)


def faster_than(peer: str) -> Target:
    return Target("faster", 1.0, peer)


@dataclass(frozen=True)
class Side:
    """One side of a row: a median in milliseconds, or why there is none."""

    ms: float = math.nan
    timed_out: float | None = None  # the timeout it hit, in seconds
    error: str = ""  # it failed or could not run ("not installed: ...", "exited 1: ...")
    not_applicable: str = ""  # it has no such command (the row is N/A)

    @property
    def measured(self) -> bool:
        return self.timed_out is None and not self.error and not self.not_applicable and math.isfinite(self.ms)

    def cell(self) -> str:
        if self.not_applicable:
            return self.not_applicable
        if self.timed_out is not None:
            return f"timed out after {self.timed_out:g} s"
        if self.error:
            return self.error
        return format_ms(self.ms)


def measured(ms: float) -> Side:
    return Side(ms=ms)


def at_rate(rows: int, rows_per_second: float) -> Side:
    """The time `rows` take at `rows_per_second`: a throughput target ("at least 0.4× as many rows/s")
    becomes a time target ("at most 2.5× the time")."""
    return measured(rows / rows_per_second * 1000) if rows_per_second > 0 else failed("no rows per second")


def timed_out(seconds: float) -> Side:
    return Side(timed_out=seconds)


def failed(reason: str) -> Side:
    return Side(error=reason)


def no_such_command(reason: str) -> Side:
    return Side(not_applicable=reason)


@dataclass(frozen=True)
class Verdict:
    status: str
    why: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.why}" if self.why else self.status


def ratio(subject: Side, baseline: Side) -> float:
    if subject.measured and baseline.measured and baseline.ms > 0:
        return subject.ms / baseline.ms
    return math.nan


def verdict(subject: Side, baseline: Side, target: Target | None) -> Verdict:
    """Whether `subject` meets `target` against `baseline`."""
    if target is None:
        return Verdict(REPORTED)
    for side in (subject, baseline):
        if side.not_applicable:
            return Verdict(NOT_APPLICABLE, side.not_applicable)
    if subject.timed_out is not None:
        return Verdict(FAIL, f"timed out after {subject.timed_out:g} s")
    if subject.error:
        return Verdict(ERROR, subject.error)
    if not baseline.measured:
        return Verdict(UNVERIFIED, baseline.cell())
    if not subject.measured:
        return Verdict(ERROR, "no timing")
    return Verdict(PASS if target.met(ratio(subject, baseline)) else FAIL)


@dataclass
class Row:
    section: str
    label: str
    subject_name: str
    subject: Side
    baseline_name: str
    baseline: Side
    target: Target | None = None
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return ratio(self.subject, self.baseline)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.subject, self.baseline, self.target)


def summary(rows: list[Row]) -> tuple[int, int]:
    """(targets passed, targets counted): UNVERIFIED and ERROR count and do not pass, N/A does not count."""
    counted = [row for row in rows if row.verdict.status in COUNTED]
    return sum(row.verdict.status == PASS for row in counted), len(counted)


def format_ms(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    if value < 1:
        return f"{value:.3f}"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def table(rows: list[Row]) -> str:
    """The markdown table of `rows`, one section heading row where the section changes."""
    lines = [
        "| measurement | subject | ms | baseline | ms | ratio | target | verdict |",
        "| --- | --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            lines.append(f"| **{section}** | | | | | | | |")
        r = row.ratio
        cells = [
            row.label + (f" ({row.note})" if row.note else ""),
            row.subject_name,
            row.subject.cell(),
            row.baseline_name,
            row.baseline.cell(),
            f"{r:.2f}" if math.isfinite(r) else "—",
            str(row.target) if row.target else "—",
            str(row.verdict),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    passed, counted = summary(rows)
    lines.append("")
    lines.append(f"{passed} of {counted} targets passed")
    return "\n".join(lines)


# Every target the bench gates, in one place (run.py and the tests both read these).
TARGETS: dict[str, Target] = {
    # issue 17: dbmigrate against psql and the peers, on the generated history
    "from_empty_vs_psql": at_most(1.25),
    "from_empty_vs_dbmate": faster_than("dbmate"),
    "noop_vs_python": at_most(1.3),
    "noop_vs_node_pg_migrate": faster_than("node-pg-migrate"),
    "noop_vs_alembic": faster_than("Alembic"),
    "status_vs_python": at_most(1.3),
    "status_vs_node_pg_migrate": faster_than("node-pg-migrate"),
    "status_vs_alembic": faster_than("Alembic"),
    "per_migration_vs_psql": at_most(1.25),
    # the framework's own rows, each against a baseline doing the same work
    "migrate_all_vs_psql": at_most(3),
    "noop_vs_piccolo": at_most(0.5),
    "test_db_pool": at_most(0.5),
    "seed_empty": at_most(2),
    "seed_holding_rows": at_most(2),
    "verify_linear": at_most(1.5),
    "verify_linear_long": at_most(1.5),  # verify of 1,200 migrations against 300, per migration
    # the live-database features (bench/live_rows.py)
    "verify_trace_overhead": at_most(1.3),  # verify with its lock trace against TRACE=0
    "fill_vs_psql_copy": at_most(1.25),  # the rehearsal's fill at least 0.8× psql \copy's speed
    "batched_backfill": at_most(2.5),  # times: batched throughput ≥ 0.4× one UPDATE's
    "fleet_over_network": at_most(0.33),
}
