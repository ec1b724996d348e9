"""A fleet: many databases, each with the migrations of one kind (orion, rfq or marketdata).

`make db-migrate-fleet TARGETS=fleet.txt [PARALLEL=8] [TO=003] [DRY_RUN=1] [SHARD=2/4]` migrates
every database the file lists, at most PARALLEL at a time, each under its own migration lock
(the executor's, as for one database), each failure kept to its own database. It ends with a
summary table and fails when any database failed; a rerun does only what is left, since every
database migrated already has nothing to do. `make db-migrate-status TARGETS=fleet.txt
[FORMAT=json]` reads the whole fleet's state the same way.

The file has one target per line, `<kind> <url>` (fleet_targets.py reads it). SHARD=i/n keeps
every n-th target starting at the i-th, so n jobs of an orchestrator (a GitHub Actions matrix, a
Kubernetes Job per shard) split one fleet between them; overlapping jobs are safe, because of the
lock. Every target's state is read, and what its server says it is, before any is migrated: two
lines naming one database stop the run with nothing migrated. Passwords are never shown: URLs
appear with the password masked.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbmigrate.commands import status as status_report
from dbmigrate.commands.common import Options
from dbmigrate.commands.fleet_targets import (
    FleetTarget,
    database_identity,
    read_targets,
    refuse_one_database_twice,
    shard,
)
from dbmigrate.core.config import Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import reporting_to, say
from dbmigrate.core.urls import redact, redact_url
from dbmigrate.engine import executor, leftovers, planning
from dbmigrate.engine.files import last_of
from dbmigrate.engine.state import MigrationState, forwards_plan, left_for_later

DEFAULT_PARALLEL = 8


@dataclass
class Outcome:
    target: FleetTarget
    seconds: float = 0.0
    before: str | None = None
    after: str | None = None
    applied: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # post-deploy migrations PHASE=pre left pending
    error: str | None = None
    lines: list[str] = field(default_factory=list)
    state: MigrationState | None = None  # read before anything is migrated
    identity: tuple | None = None  # what its server says the database is (fleet_targets.database_identity)


async def run(
    settings: Settings,
    command: str,
    targets: str | None,
    database: str | None,
    parallel: int | None,
    shard_spec: str | None,
    options: Options,
) -> None:
    """migrate-fleet, and status of a fleet: TARGETS names every database of the fleet."""
    if not (targets or "").strip():
        raise UsageError("a fleet needs TARGETS, a file with one `<kind> <url>` per line (README: Migrating a fleet)")
    if database:
        raise UsageError("status takes DB or TARGETS, not both: TARGETS names every database of the fleet")
    path = Path(targets.strip())
    if command == "status":
        await status(settings, path, options.json, options.check, parallel, shard_spec)
    else:
        await migrate(
            settings, path, parallel, options.to, options.dry_run, options.out_of_order, shard_spec, options.phase
        )


def check_parallel(parallel: int | None) -> int:
    if parallel is None:
        return DEFAULT_PARALLEL
    if parallel < 1:
        raise UsageError(f"PARALLEL={parallel} is not a number of databases at once: write e.g. PARALLEL=8")
    return parallel


async def migrate(
    settings: Settings,
    path: Path,
    parallel: int | None = None,
    to: str | None = None,
    dry_run: bool = False,
    out_of_order: bool = False,
    shard_spec: str | None = None,
    phase: str | None = None,
) -> list[Outcome]:
    """Migrate every target (of this shard; PHASE=pre: pre-deploy migrations only); raise a
    UserError naming the failed ones."""
    targets = shard(read_targets(settings, path), shard_spec)
    limit = check_parallel(parallel)
    say(
        f"fleet: {len(targets)} database(s) from {path}{f' (shard {shard_spec.strip()})' if shard_spec else ''}, "
        f"{min(limit, len(targets))} at a time{', dry run' if dry_run else ''}"
        f"{', pre-deploy migrations only (PHASE=pre)' if phase == 'pre' else ''}"
    )

    # Every state and identity first: two lines naming one database stop the run before anything changes.
    looked = await _run_all(targets, limit, _look, progress=False)
    refuse_one_database_twice([(o.target, o.identity) for o in looked if o.identity is not None])

    async def one(outcome: Outcome) -> Outcome:
        if outcome.error:
            return outcome
        if dry_run:
            return await _dry_run_one(outcome, to, out_of_order, phase)
        return await _migrate_one(outcome, to, out_of_order, phase)

    outcomes = await _run_all(looked, limit, one)
    if dry_run:
        for outcome in outcomes:
            say(f"== {outcome.target.shown} ({outcome.target.kind}, line {outcome.target.line})")
            for line in outcome.lines:
                say(line)
            if outcome.error:
                say(f"-- error: {outcome.error}")
    for line in summary_table(outcomes, dry_run):
        say(line)
    _fail_if_any(outcomes)
    return outcomes


async def status(
    settings: Settings,
    path: Path,
    as_json: bool = False,
    check: bool = False,
    parallel: int | None = None,
    shard_spec: str | None = None,
) -> list[dict]:
    """The state of every target (of this shard), as a table or as status JSON (status.schema.json)."""
    targets = shard(read_targets(settings, path), shard_spec)
    read = await _run_all(targets, check_parallel(parallel), _status_one, progress=False)
    refuse_one_database_twice(
        [(target, identity) for target, (_, identity) in zip(targets, read, strict=True) if identity]
    )
    reports = [report for report, _ in read]
    if as_json:
        say(status_report.to_json(reports))
    else:
        rows = [
            (
                report["url"] or "",
                report["database"],
                _latest_applied(report) or "(none)",
                f"UNREACHABLE: {report['error']}" if report["error"] else status_report.summary(report),
            )
            for report in reports
        ]
        for line in _table(("target", "kind", "latest applied", "state"), rows):
            say(line)
        problems = sum(1 for r in reports if not r["ok"])
        say(f"{len(reports)} database(s): {len(reports) - problems} up to date, {problems} not")
    unreachable = [r for r in reports if r["error"]]
    if unreachable:
        names = ", ".join(r["url"] or r["database"] for r in unreachable[:3])
        more = f" and {len(unreachable) - 3} more" if len(unreachable) > 3 else ""
        raise UserError(f"{len(unreachable)} of {len(reports)} database(s) could not be read: {names}{more}")
    if check:
        behind = [r for r in reports if not r["ok"]]
        if behind:
            names = ", ".join(f"{r['url']} ({status_report.summary(r)})" for r in behind[:3])
            more = f" and {len(behind) - 3} more" if len(behind) > 3 else ""
            raise UserError(f"{len(behind)} of {len(reports)} database(s) are not up to date: {names}{more}")
    return reports


async def _run_all(items: list, limit: int, work, progress: bool = True) -> list:
    """`work(item)` for every target (or its outcome so far), at most `limit` at once, results in
    the file's order."""
    gate = asyncio.Semaphore(limit)
    bar = _Progress(len(items)) if progress and sys.stderr.isatty() else None

    async def gated(item):
        async with gate:
            result = await work(item)
        if bar is not None:
            bar.done(isinstance(result, Outcome) and result.error is not None)
        return result

    try:
        return await asyncio.gather(*(gated(item) for item in items))
    finally:
        if bar is not None:
            bar.close()


async def _look(fleet_target: FleetTarget) -> Outcome:
    """A target's state and identity, read on one connection (closed again before migrating)."""
    outcome = Outcome(fleet_target)
    target = fleet_target.target
    started = time.perf_counter()
    try:
        with reporting_to(outcome.lines.append):
            async with target.connected("fleet") as conn:
                outcome.state = await planning.read_state(target, conn)
                outcome.identity = await database_identity(conn)
            outcome.before = outcome.after = _latest(outcome.state)
    except Exception as error:  # one database's failure never stops the others
        outcome.error = _error_text(error, target.url)
    outcome.seconds = time.perf_counter() - started
    return outcome


async def _migrate_one(outcome: Outcome, to: str | None, out_of_order: bool, phase: str | None = None) -> Outcome:
    target = outcome.target.target
    started = time.perf_counter()
    try:
        with reporting_to(outcome.lines.append):
            state = outcome.state
            state.check_integrity()
            if forwards_plan(state, to, out_of_order, phase):  # else nothing to do: no lock, no second connection
                outcome.applied = await executor.migrate(target, to, out_of_order, phase)
                outcome.after = last_of([*filter(None, [outcome.before]), *outcome.applied])
            outcome.left = [m.id for m in left_for_later(forwards_plan(state, to, True), phase)]
    except Exception as error:  # one database's failure never stops the others
        outcome.error = _error_text(error, target.url)
    outcome.seconds += time.perf_counter() - started
    return outcome


async def _dry_run_one(outcome: Outcome, to: str | None, out_of_order: bool, phase: str | None = None) -> Outcome:
    target = outcome.target.target
    started = time.perf_counter()
    try:
        with reporting_to(outcome.lines.append):
            await executor.dry_run(target, to, out_of_order, phase)
    except Exception as error:
        outcome.error = _error_text(error, target.url)
    outcome.seconds += time.perf_counter() - started
    return outcome


async def _status_one(fleet_target: FleetTarget) -> tuple[dict, tuple | None]:
    """A target's status report, and what its server says the database is (None if unreachable)."""
    target = fleet_target.target
    try:
        async with target.connected("fleet status") as conn:
            state = await planning.read_state(target, conn)
            invalid = await leftovers.invalid_indexes(conn)
            identity = await database_identity(conn)
        return status_report.from_state(state, target.shown_url, invalid), identity
    except Exception as error:
        empty = MigrationState(database=target.name, files=[], applied={}, failed={})
        report = status_report.from_state(empty, target.shown_url)
        report.update(error=_error_text(error, target.url), ok=False)
        return report, None


def _latest(state: MigrationState) -> str | None:
    return state.last_applied


def _latest_applied(report: dict) -> str | None:
    applied = [row["id"] for row in report["migrations"] if row["state"] in ("applied", "modified")]
    return last_of(applied)


def _error_text(error: Exception, url: str) -> str:
    if isinstance(error, UserError):
        text = str(error)
    else:
        detail = (str(error).strip().splitlines() or [""])[0]
        text = f"unexpected {type(error).__name__}: {detail}"
    return redact(text.replace(url, redact_url(url)))


def summary_table(outcomes: list[Outcome], dry_run: bool = False) -> list[str]:
    rows = []
    for o in outcomes:
        if o.error:
            result = f"FAILED: {o.error}"
        elif dry_run:
            result = "dry run: nothing changed"
        elif o.applied:
            result = f"applied {len(o.applied)}"
        else:
            result = "up to date"
        if o.left and not o.error:
            result += f"; {len(o.left)} post-deploy pending"
        unknown = "?" if o.error and o.before is None else "(none)"
        change = f"{o.before or unknown} → {o.after or unknown}"
        rows.append((o.target.shown, o.target.kind, change, f"{o.seconds:.1f} s", result))
    lines = _table(("target", "kind", "before → after", "time", "result"), rows)
    failed = sum(1 for o in outcomes if o.error)
    applied = sum(len(o.applied) for o in outcomes)
    lines.append(
        f"{len(outcomes)} database(s): {len(outcomes) - failed} ok, {failed} failed; {applied} migration(s) applied"
    )
    return lines


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    widths[-1] = 0  # the last column is not padded

    def line(cells) -> str:
        return "  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _fail_if_any(outcomes: list[Outcome]) -> None:
    failed = [o for o in outcomes if o.error]
    if failed:
        names = ", ".join(f"{o.target.shown} (line {o.target.line})" for o in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise UserError(
            f"{len(failed)} of {len(outcomes)} database(s) failed: {names}{more}; the others are migrated, "
            "and a rerun does only what is left"
        )


class _Progress:
    """done / failed / remaining on one line of stderr, redrawn as targets finish (TTY only)."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total, self.finished, self.failed = total, 0, 0
        self._draw()

    def done(self, failed: bool) -> None:
        self.finished += 1
        self.failed += failed
        self._draw()

    def _draw(self) -> None:
        filled = round(self.WIDTH * self.finished / self.total) if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stderr.write(
            f"\rfleet [{bar}] {self.finished - self.failed} done, {self.failed} failed, "
            f"{self.total - self.finished} remaining "
        )
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
