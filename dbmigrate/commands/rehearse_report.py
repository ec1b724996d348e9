"""The rehearsal's report: one line per migration as it ends, the table at the end (text, and
Markdown for a pull request: SUMMARY=path or $GITHUB_STEP_SUMMARY), and the failures.

A migration fails the rehearsal when it failed to apply, or when it held the workload up longer
than MAX_BLOCK: its blocked time is the longest a workload query took while it ran (the
workload's own timing) or the longest lock wait sampled meanwhile, whichever is longer.
Invariant: every number shown comes from the Result it describes; nothing is recomputed here.
"""

from __future__ import annotations

from pathlib import Path

_HEADERS = ("migration", "duration", "blocked (timed / sampled)", "p50 / p99 before", "p50 / p99 during", "tables")


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _pair(pair: tuple[float | None, float | None]) -> str:
    return f"{_ms(pair[0])} / {_ms(pair[1])}"


def _size(value: int | None) -> str:
    if value is None:
        return "–"
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _sizes(result) -> str:
    return ", ".join(
        f"{table} {_size(result.sizes_before.get(table))} -> {_size(result.sizes_after.get(table))}"
        for table in sorted(set(result.sizes_before) | set(result.sizes_after))
    )


def verdict(result, max_block_ms: float) -> str:
    if result.failed:
        return "FAILED"
    if not result.workload:
        return "no workload"
    return "BLOCKS" if result.blocked_ms > max_block_ms else "ok"


def _row(result) -> tuple[str, ...]:
    blocked = f"{_ms(result.longest_ms)} / {_ms(result.sampled_ms)}"
    return (
        result.migration,
        _ms(result.duration_ms),
        blocked,
        _pair(result.before),
        _pair(result.during),
        _sizes(result),
    )


def progress_line(database: str, result) -> str:
    blocked = _ms(result.longest_ms)
    return (
        f"{database}: {result.migration}: {_ms(result.duration_ms)}; the workload waited up to {blocked} "
        f"(p99 {_ms(result.before[1])} before, {_ms(result.during[1])} during; {result.queries} queries, "
        f"{result.errors} failed)"
    )


def text(database: str, results, default_rows: int, per_table: dict, options, max_block_ms: float, loads) -> list[str]:
    """The table, aligned, one row per migration, with a verdict against MAX_BLOCK."""
    rows_note = f"{default_rows:,} rows per table" if not options.from_db else f"a copy of {options.from_db}"
    if per_table and not options.from_db:
        rows_note += " (" + ", ".join(f"{t} {n:,}" for t, n in sorted(per_table.items())) + ")"
    refused = [f"{load.shown} reads only ({load.write_refused})" for load in loads if load.write_refused]
    lines = [
        f"{database}: rehearsal on {rows_note}, {options.clients} client(s), MAX_BLOCK {options.max_block}"
        + (f"; {'; '.join(refused)}" if refused else "")
    ]
    table = [(*_HEADERS, "verdict")] + [(*_row(r), verdict(r, max_block_ms)) for r in results]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        lines.append(f"{database}:   " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return lines


def failures(database: str, results, max_block_ms: float) -> list[str]:
    found = []
    for result in results:
        if result.failed:
            found.append(f"{result.failed} (in the rehearsal)")
        elif result.workload and result.blocked_ms > max_block_ms:
            found.append(
                f"{database}: {result.migration} held the workload up for {_ms(result.blocked_ms)}, more than "
                f"MAX_BLOCK {_ms(max_block_ms)}: `make db-verify` names the lock and the safe recipe"
            )
    return found


SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "rehearsal.schema.json"


def document(database: str, results, options, max_block_ms: float) -> dict:
    """The JSON of `make db-rehearse FORMAT=json` (schemas/rehearsal.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "database": database,
        "rows": options.rows if not options.from_db else None,
        "from_db": options.from_db,
        "clients": options.clients,
        "max_block_ms": max_block_ms,
        "migrations": [
            {
                "migration": r.migration,
                "duration_ms": round(r.duration_ms, 1),
                "blocked_ms": round(r.blocked_ms, 1) if r.workload else None,
                "longest_query_ms": None if r.longest_ms is None else round(r.longest_ms, 1),
                "longest_lock_wait_sampled_ms": round(r.sampled_ms, 1),
                "before": {"p50_ms": _rounded(r.before[0]), "p99_ms": _rounded(r.before[1])},
                "during": {"p50_ms": _rounded(r.during[0]), "p99_ms": _rounded(r.during[1])},
                "queries": r.queries,
                "failed_queries": r.errors,
                "sizes_before": r.sizes_before,
                "sizes_after": r.sizes_after,
                "failed": r.failed,
                "verdict": verdict(r, max_block_ms),
            }
            for r in results
        ],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def markdown(database: str, results, max_block_ms: float) -> str:
    marks = {"ok": "✅", "BLOCKS": "❌ blocks", "FAILED": "❌ failed", "no workload": "–"}
    lines = [
        f"### Rehearsal: {database} (MAX_BLOCK {_ms(max_block_ms)})",
        "",
        "| " + " | ".join((*_HEADERS, "verdict")) + " |",
        "|" + "---|" * (len(_HEADERS) + 1),
    ]
    for result in results:
        cells = [*_row(result), marks[verdict(result, max_block_ms)]]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n\n"


def write_summary(path: Path, database: str, results, max_block_ms: float, append: bool) -> None:
    with path.open("a" if append else "w", encoding="utf-8") as out:
        out.write(markdown(database, results, max_block_ms))
