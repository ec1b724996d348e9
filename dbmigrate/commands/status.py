"""status (the story's db:migrate:status): each database's migrations and their states, as text or
as JSON.

The JSON shape is versioned and documented by `status.schema.json` beside this file (JSON
Schema): timestamps are ISO 8601 in UTC, absent values are null, every row has every key, and a
database that cannot be reached appears with its error instead of vanishing from the output.

With CHECK=1 it also fails when an app's tables.py has changes no migration makes (model_drift.py,
which imports Piccolo: only then, so a plain status stays fast).
A migration applied from another branch (its file missing, a copy of its down stored when it was
applied: engine/stored_down.py) is named so, with the STEPS of `make db-migrate-down` that reverts it.
An INVALID index (what a failed or interrupted concurrent build leaves: engine/leftovers.py) is
named, with the migration whose build left it when the trail says so, and fails --check.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from dbmigrate.commands.common import NO_OPTIONS, Options
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.core.urls import redact_url
from dbmigrate.engine import leftovers, planning, progress
from dbmigrate.engine.failures import incomplete_progress
from dbmigrate.engine.files import order_key
from dbmigrate.engine.phases import POST
from dbmigrate.engine.progress import Progress
from dbmigrate.engine.state import MigrationState
from dbmigrate.engine.target import Target
from dbmigrate.server import connection

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "status.schema.json"
STATES = ("applied", "pending", "modified", "missing", "removed", "failed", "incomplete")
_MARKS = {
    "applied": "[x]",
    "pending": "[ ]",
    "modified": "[M]",
    "missing": "[?]",
    "removed": "[-]",
    "failed": "[F]",
    "incomplete": "[I]",
}


async def status(settings: Settings, databases: list[Database], options: Options = NO_OPTIONS) -> None:
    """Show, per database, what is applied, pending, modified, missing, failed or incomplete.

    An unreachable database is reported with its error (and fails the command) after the others.
    """
    await connection.prepare(settings, databases)
    reports = await asyncio.gather(*(report(settings, database) for database in databases))
    if options.json:
        say(to_json(reports))
    else:
        for one in reports:
            for line in text_lines(one):
                say(line)
    unreachable = [r for r in reports if r["error"]]
    if unreachable:
        raise UserError(unreachable[-1]["error"])
    if options.check:
        problems = [f"{r['database']}: {summary(r)}" for r in reports if not r["ok"]]
        problems += await _model_drift(databases)
        if problems:
            raise UserError("; ".join(problems))


async def _model_drift(databases: list[Database]) -> list[str]:
    """For CHECK=1: each database whose tables.py has changes no migration makes, with the changes."""
    from dbmigrate.commands.model_drift import model_changes  # imports Piccolo: only CHECK=1 pays for it

    problems = []
    for database in databases:
        changes = await model_changes(database.app)
        if changes:
            problems.append(
                f"{database.name}: {database.app}/tables.py has changes no migration makes ({'; '.join(changes)}): "
                f"run `make db-migrate-create NAME=... DB={database.name} AUTO=1`"
            )
    return problems


async def report(settings: Settings, database: Database) -> dict:
    """The status of one database; an unreachable one gives a report holding its error."""
    try:
        target = Target.resolve(settings, database)
        async with target.connected("status") as conn:
            state = await planning.read_state(target, conn)
            invalid = await leftovers.invalid_indexes(conn)
            batches = await progress.read(conn, target.database.app)
    except UserError as error:
        url = settings.get(database.url_variable)
        return _report(database.name, redact_url(url) if url else None, [], str(error))
    return from_state(state, target.shown_url, invalid, batches)


def from_state(
    state: MigrationState,
    url: str | None,
    invalid: list[leftovers.InvalidIndex] | None = None,
    batches: dict[str, Progress] | None = None,
) -> dict:
    modified = {m.id for m in state.modified}
    late = {m.id for m in state.out_of_order}
    rows = []
    for migration in state.files:
        row = _row(migration.id, "pending", migration.shown)
        row["out_of_order"] = migration.id in late
        row["phase"] = migration.phase
        applied = state.applied.get(migration.id)
        if applied:
            row.update(
                state="modified" if migration.id in modified else "applied",
                applied_at=_utc(applied.recorded_at or applied.ran_on),
                duration_ms=applied.duration_ms,
                applied_by=applied.recorded_by,
                checksum_recorded=applied.checksum is not None,
            )
        rows.append(row)
    revert_steps = state.revert_steps()
    rows += [{**_row(i, "missing", None), "revert_steps": revert_steps.get(i)} for i in state.missing]
    rows += [_row(i, "removed", None) for i in state.removed]
    by_id = {row["id"]: row for row in rows}
    for migration_id, unfinished in state.failed.items():
        row = by_id.get(migration_id)
        if row is None or row["state"] != "pending":
            row = _row(migration_id, "pending", None)  # its file is gone: still named
            rows.append(row)
        row.update(
            state="incomplete" if unfinished.interrupted else "failed",
            failed_at=_utc(unfinished.failed_at),
            error=unfinished.error or None,
            statements_done=unfinished.statements_done,
            statements_total=unfinished.statements_total,
            last_statement=unfinished.last_statement,
        )
    for row in rows:
        if row["id"] in (batches or {}):
            row["batches"] = batch_progress(batches[row["id"]])
    rows.sort(key=lambda row: order_key(row["id"]))  # by number, files or not (a stable sort)
    return _report(state.database, url, rows, None, _invalid_indexes(state, invalid or []))


def _invalid_indexes(state: MigrationState, invalid: list[leftovers.InvalidIndex]) -> list[dict]:
    """Each INVALID index, with the unfinished migration whose concurrent build left it."""
    builds = [(f.id, leftovers.IndexBuild.from_record(f.building)) for f in state.failed.values()]
    return [
        {
            "index": index.qualified,
            "table": index.qualified_table,
            "migration": next((i for i, build in builds if build and leftovers.left_by(build, index)), None),
            "building_pid": index.building_pid,
        }
        for index in invalid
    ]


def batch_progress(found: Progress) -> dict:
    """A staged migration's progress (engine/progress.py) as status shows it."""
    rate, eta = found.rows_per_second, found.eta_seconds
    return {
        "state": found.state,
        "paused": found.paused,
        "stage": found.stage,
        "stages": found.stages,
        "rows_done": found.rows_done,
        "rows_total": found.rows_total,
        "rows_per_second": round(rate, 1) if rate is not None else None,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "updated_at": _utc(found.updated_at),
    }


def _row(migration_id: str, state: str, file: str | None) -> dict:
    return {
        "id": migration_id,
        "state": state,
        "phase": None,  # "pre" or "post" (deploy phase, engine/phases.py); None when the file is gone
        "file": file,
        "out_of_order": False,
        "applied_at": None,
        "duration_ms": None,
        "applied_by": None,
        "checksum_recorded": None,
        "failed_at": None,
        "error": None,
        "statements_done": None,
        "statements_total": None,
        "last_statement": None,
        "batches": None,  # a staged migration's progress (batch_progress), once it has some
        "revert_steps": None,  # applied from another branch: the STEPS of down that reverts it from its stored copy
    }


def _report(
    database: str, url: str | None, rows: list[dict], error: str | None, invalid: list[dict] | None = None
) -> dict:
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in STATES}
    counts["out_of_order"] = sum(1 for r in rows if r["out_of_order"])
    invalid = invalid or []
    counts["invalid_indexes"] = sum(1 for i in invalid if i["building_pid"] is None)  # not being built now
    problems = ("pending", "modified", "missing", "failed", "incomplete", "invalid_indexes")
    ok = error is None and not any(counts[k] for k in problems)
    return {
        "database": database,
        "url": url,
        "error": error,
        "ok": ok,
        "counts": counts,
        "migrations": rows,
        "invalid_indexes": invalid,
    }


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # Piccolo's ran_on: written as the server's now() without a zone
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_json(reports: list[dict]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, "databases": reports}, indent=2)


def text_lines(report: dict) -> list[str]:
    if report["error"]:
        return [f"{report['database']} ({report['url'] or 'no URL'})", f"  UNREACHABLE: {report['error']}"]
    rows = report["migrations"]
    width = max((len(r["id"]) for r in rows), default=0)
    lines = [f"{report['database']} ({report['url']})"]
    left: dict[str, list[str]] = {}
    for index in report["invalid_indexes"]:
        if index["migration"]:
            left.setdefault(index["migration"], []).append(index["index"])
    lines += [
        f"  {_MARKS[r['state']]} {r['id']:<{width}}  {describe(r, left.get(r['id']))}{_phase_note(r)}" for r in rows
    ]
    lines += [f"  [!] {_describe_invalid(i)}" for i in report["invalid_indexes"] if not i["migration"]]
    elsewhere = [r for r in rows if r["revert_steps"]]
    if elsewhere:
        lines.append(
            f"  {len(elsewhere)} applied from another branch: `make db-migrate-down DB={report['database']} "
            f"STEPS={max(r['revert_steps'] for r in elsewhere)}` reverts them from the copy stored when they were "
            "applied, or check out their branch"
        )
    lines.append(f"  {summary(report)}")
    return lines


def _describe_invalid(index: dict) -> str:
    if index["building_pid"] is not None:
        return f"INVALID index {index['index']} on {index['table']}: being built now (pid {index['building_pid']})"
    return (
        f"INVALID index {index['index']} on {index['table']}: left by a failed or interrupted concurrent build; "
        f"it slows writes and serves no query: DROP INDEX CONCURRENTLY {index['index']}, or REINDEX INDEX "
        "CONCURRENTLY it"
    )


def _phase_note(row: dict) -> str:
    """What the text line adds to a row: its phase when post-deploy, a staged migration's progress."""
    note = " (post-deploy)" if row.get("phase") == POST else ""
    found = row.get("batches")
    applied = row["state"] in ("applied", "modified")
    if found and (not applied or found["rows_total"] is not None):
        note += f"; {describe_batches(row['id'], found, applied)}"
    return note


def describe_batches(migration_id: str, found: dict, applied: bool) -> str:
    """`batches: 120,000 of 200,000 rows (60%), 45,000 rows/s, ETA 2 s; stage 2 of 2` (PAUSED when asked)."""
    done, total = found["rows_done"], found["rows_total"]
    if total is not None:
        text = f"batches: {done:,} of {total:,} rows ({min(done / total, 1) if total else 1:.0%})"
    else:
        text = f"batches: {done:,} rows" if done else "batches: not started"
    if found["rows_per_second"]:
        text += f", {found['rows_per_second']:,.0f} rows/s"
    if not applied:
        if found["eta_seconds"] is not None and total is not None:
            text += f", ETA {_duration(found['eta_seconds'])}"
        if found["stages"]:
            text += f"; stage {min(found['stage'] + 1, found['stages'])} of {found['stages']}"
    if found["paused"]:
        text += f"; PAUSED: make db-migrate-resume ID={migration_id}"
    return text


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(row: dict, invalid_indexes: list[str] | None = None) -> str:
    state = row["state"]
    if state in ("applied", "modified"):
        took = f", took {row['duration_ms']} ms" if row["duration_ms"] is not None else ""
        by = f", by {row['applied_by']}" if row["applied_by"] else ""
        text = f"applied {row['applied_at'] or 'at an unknown time'}{took}{by}"
        if state == "modified":
            text += "; MODIFIED since: restore the file, or repair if deliberate"
        elif not row["checksum_recorded"]:
            text += " (no checksum: applied outside dbmigrate; repair records one)"
        return text
    if state == "pending":
        return "pending, OUT OF ORDER (numbered before an applied migration)" if row["out_of_order"] else "pending"
    progress = incomplete_progress(row["statements_done"], row["statements_total"], row["last_statement"])
    gone = "; its file is MISSING" if row["file"] is None else ""
    shown = ", ".join(invalid_indexes or [])
    left = f"; it left INVALID index {shown}, which the next migrate drops first" if shown else ""
    done = row["statements_done"] or 0
    resume = f"resumes at statement {done + 1}" if done else "runs again from statement 1"
    if state == "failed":
        return (
            f"FAILED midway at {row['failed_at']} and not transactional: {progress}; error: {row['error']}{gone}"
            f"{left}. Fix the cause and migrate again: it {resume} (or repair to clear it)"
        )
    if state == "incomplete":
        return (
            f"INCOMPLETE: interrupted at {row['failed_at']} (runner or connection died, or still running) and not "
            f"transactional: {progress}{gone}{left}. Migrate again: it {resume} (or repair to clear it)"
        )
    if state == "missing" and row["revert_steps"]:
        return (
            "applied from another branch: its file is not here, and a copy of its down was stored when it was applied"
        )
    if state == "missing":
        return "applied, but its file is MISSING: restore it, or repair if deleted on purpose"
    return "applied; its file is gone (accepted by repair, or replaced by a squash baseline)"


def summary(report: dict) -> str:
    if report["error"]:
        return "unreachable"
    counts = report["counts"]
    parts = [f"{counts['applied'] + counts['modified']} applied", f"{counts['pending']} pending"]
    parts += [
        f"{counts[k]} {k.replace('_', ' ')}"
        for k in ("modified", "missing", "failed", "incomplete", "out_of_order", "invalid_indexes")
        if counts[k]
    ]
    return ", ".join(parts)
