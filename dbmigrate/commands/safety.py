"""verify's safety check: each migration's lock trace printed, judged by the policy
(engine/safety_rules.py), and given as JSON (schemas/trace.schema.json) or as a Markdown table for a
pull request (SUMMARY=path, or $GITHUB_STEP_SUMMARY).

A migration accepts a finding with SAFETY_ACCEPTED = {"rule": "why"}: the rule must be one the
policy has and the reason may not be empty. A migration imported from another tool (SOURCE_TOOL)
ran already where it came from, so it is traced but not judged; with LINT=new, neither is a
migration on the base branch. Invariant: every finding the policy makes is either printed as a
problem or printed as accepted, with its reason; none is dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from dbmigrate.core.reporting import say
from dbmigrate.engine.migration import Migration
from dbmigrate.engine.safety_rules import RULES, Finding, findings
from dbmigrate.engine.trace_model import LOCK_MODES, MigrationTrace, StatementTrace, blocks

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "trace.schema.json"


@dataclass
class Judged:
    trace: MigrationTrace
    judged: bool  # False: imported from another tool, or on the base branch with LINT=new
    why_not: str | None = None
    findings: list[Finding] = field(default_factory=list)  # not accepted: each one fails verify
    accepted: list[tuple[Finding, str]] = field(default_factory=list)  # (finding, the migration's reason)


def check(report, traces: list[MigrationTrace], migrations: list[Migration], scope: set[Path] | None) -> list[Judged]:
    """Print each trace, judge it, and add the safety check's line to `report` (verify's Report)."""
    by_id = {migration.id: migration for migration in migrations}
    problems: list[str] = []
    results = []
    for trace in traces:
        migration = by_id[trace.migration]
        result, refused = _judge(trace, migration, scope)
        # The recipe goes below its finding, as the detail verify prints indented.
        problems += refused + [f"{finding.summary()}\n{finding.recipe}" for finding in result.findings]
        results.append(result)
        for line in trace_lines(result):
            report_line(report, line)
    judged = [r for r in results if r.judged]
    accepted = sum(len(r.accepted) for r in judged)
    skipped = [r for r in results if not r.judged]
    passed = f"{len(judged)} migration(s) traced statement by statement: none blocks a table that existed before it"
    if accepted:
        passed += f" ({accepted} finding(s) accepted by SAFETY_ACCEPTED)"
    if skipped:
        passed += f"; {len(skipped)} not judged ({skipped[0].why_not})"
    report.check("safety", problems, passed)
    return results


def report_line(report, line: str) -> None:
    say(f"{report.database}: {line}")


def _judge(trace: MigrationTrace, migration: Migration, scope: set[Path] | None) -> tuple[Judged, list[str]]:
    accepted_rules = migration.options.safety_accepted
    if migration.options.source_tool:
        return Judged(trace, False, f"imported from {migration.options.source_tool}: applied already"), []
    if scope is not None and migration.file.path in scope:
        return Judged(trace, False, "on the base branch: LINT=new"), []
    refused = [
        f"{trace.migration}: SAFETY_ACCEPTED names {rule!r}, which is not a rule: use one of {', '.join(RULES)}"
        for rule in accepted_rules
        if rule not in RULES
    ]
    refused += [
        f"{trace.migration}: SAFETY_ACCEPTED needs a reason for {rule} (why is it safe here?)"
        for rule, reason in accepted_rules.items()
        if rule in RULES and not str(reason).strip()
    ]
    result = Judged(trace, True)
    for finding in findings(trace):
        reason = str(accepted_rules.get(finding.rule, "")).strip()
        if reason:
            result.accepted.append((finding, reason))
        else:
            result.findings.append(finding)
    return result, refused


# ---- text ----------------------------------------------------------------------------------------


def trace_lines(result: Judged) -> list[str]:
    """The trace of one migration as text: a header, then one line per statement that touches a
    relation that existed before the migration (the others are counted), each finding's rule
    under the statement it is about (the finding itself, with its recipe, is the check's problem)."""
    trace = result.trace
    kind = "transactional" if trace.transactional else "non-transactional"
    judged = "" if result.judged else f"; not judged: {result.why_not}"
    lines = [
        f"trace {trace.migration} ({kind}, lock_timeout {trace.lock_timeout}, "
        f"{len(trace.statements)} statement(s), {trace.duration_ms:g} ms{judged})"
    ]
    quiet = 0
    for statement in trace.statements:
        shown = statement_text(statement)
        if shown is None:
            quiet += 1
            continue
        lines.append(f"  {shown}")
        for finding in result.findings:
            if (finding.file, finding.line) == (statement.file, statement.line):
                lines.append(f"    finding: {finding.rule} (with its recipe below)")
    if quiet:
        lines.append(f"  {quiet} statement(s) touch only what this migration creates (or nothing)")
    for finding, reason in result.accepted:
        lines.append(f"  accepted {finding.rule} at {finding.where}: {reason}")
    return lines


_TABLE_KINDS = ("table", "partitioned table", "materialized view")


def statement_text(statement: StatementTrace) -> str | None:
    """`line 12 CREATE INDEX: SHARE on users (blocks writes) held 3 ms; builds idx_x on users;
    reads users (index build)`, or None when the statement touches nothing that existed before.
    Locks on indexes and sequences are left to the JSON."""
    parts = [
        f"{mode} on {relation} ({blocks(mode)}) held {held:g} ms"
        for relation, mode, held in _existing_locks(statement, _TABLE_KINDS)
    ]
    indexes = [c for c in statement.rewrites if c.existed and c.kind not in _TABLE_KINDS]
    for change in statement.rewrites:
        if change.existed and change.kind in _TABLE_KINDS:
            own = sum(1 for index in indexes if index.table == change.relation)
            parts.append(f"rewrites {change.relation}" + (f" and its {own} index(es)" if own else ""))
    rewritten = {c.relation for c in statement.rewrites}
    parts += [f"rebuilds {c.relation}" for c in indexes if c.table not in rewritten]
    parts += [
        f"builds {c.relation} on {c.table}" for c in statement.created if c.table and _existing(statement, c.table)
    ]
    parts += [f"reads {s.table} ({s.purpose})" for s in statement.scans if s.existed]
    parts += [
        f"{'validates' if c.event == 'validated' else 'adds'} {c.type} {c.name}" + ("" if c.validated else " NOT VALID")
        for c in statement.constraints
        if c.existed and c.type != "NOT NULL"  # PostgreSQL 18 records SET NOT NULL as a constraint too
    ]
    parts += [f"writes rows of {table}" for table in statement.writes]
    if not parts:
        return None
    where = f"line {statement.line}" if statement.line else f"statement {statement.number}"
    sampled = " (outside a transaction: locks sampled)" if statement.transaction == "none" else ""
    return f"{where} {statement.command}{sampled}: " + "; ".join(parts)


def _existing_locks(statement: StatementTrace, kinds: tuple[str, ...] | None = None) -> list[tuple[str, str, float]]:
    """(relation, strongest mode, held ms) for each relation that existed (of `kinds`), strongest first."""
    strongest: dict[str, tuple[str, float]] = {}
    for lock in statement.locks:
        if not lock.existed or (kinds is not None and lock.kind not in kinds):
            continue
        current = strongest.get(lock.relation)
        if current is None or LOCK_MODES.index(lock.mode) > LOCK_MODES.index(current[0]):
            strongest[lock.relation] = (lock.mode, lock.held_ms)
    ordered = sorted(strongest.items(), key=lambda item: -LOCK_MODES.index(item[1][0]))
    return [(relation, mode, held) for relation, (mode, held) in ordered]


def _existing(statement: StatementTrace, table: str) -> bool:
    return any(lock.relation == table and lock.existed for lock in statement.locks)


# ---- JSON and Markdown ---------------------------------------------------------------------------


def document(reports) -> dict:
    """The JSON of `make db-verify FORMAT=json` (schemas/trace.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "databases": [
            {
                "database": report.database,
                "ok": not report.problems,
                "problems": report.problems,
                "migrations": [_migration_document(result) for result in report.judged],
            }
            for report in reports
        ],
    }


def _migration_document(result: Judged) -> dict:
    return {
        **asdict(result.trace),
        "judged": result.judged,
        "not_judged_because": result.why_not,
        "findings": [asdict(finding) for finding in result.findings],
        "accepted": [{**asdict(finding), "reason": reason} for finding, reason in result.accepted],
    }


def write_summary(path: Path, reports, append: bool) -> None:
    """The Markdown a pull request shows: per database, each statement that touches what existed
    before its migration, and each finding with its recipe."""
    text = markdown(reports)
    with path.open("a" if append else "w", encoding="utf-8") as out:
        out.write(text)


def markdown(reports) -> str:
    out = []
    for report in reports:
        results = report.judged
        failing = sum(len(r.findings) for r in results)
        verdict = f"{failing} finding(s)" if failing else "nothing blocks a table that existed"
        out += [f"### Lock trace: {report.database} ({verdict})", ""]
        out += ["| migration | where | statement | locks on existing relations | rewrites / scans | finding |"]
        out += ["|---|---|---|---|---|---|"]
        for result in results:
            out += _markdown_rows(result)
        for result in results:
            for finding in result.findings:
                out += ["", f"**{finding.migration}** `{finding.where}` **{finding.rule}**: {_cell(finding.problem)}"]
                out += ["", "```sql", finding.recipe, "```"]
        out.append("")
    return "\n".join(out) + "\n"


def _markdown_rows(result: Judged) -> list[str]:
    trace = result.trace
    by_place: dict[tuple[str, int | None], list[str]] = {}
    for finding in result.findings:
        by_place.setdefault((finding.file, finding.line), []).append(finding.rule)
    accepted = {(f.file, f.line): (f, reason) for f, reason in result.accepted}
    rows = []
    for statement in trace.statements:
        if statement_text(statement) is None:
            continue
        shown_locks = _existing_locks(statement, _TABLE_KINDS)
        locks = ", ".join(f"{mode} {relation} ({held:g} ms)" for relation, mode, held in shown_locks)
        changes = [f"rewrites {c.relation}" for c in statement.rewrites if c.existed and c.kind in _TABLE_KINDS]
        changes += [f"reads {s.table} ({s.purpose})" for s in statement.scans if s.existed]
        place = (statement.file, statement.line)
        if place in by_place:
            verdict = "❌ " + ", ".join(by_place[place])
        elif place in accepted:
            verdict = f"accepted {accepted[place][0].rule}: {_cell(accepted[place][1])}"
        else:
            verdict = "✅" if result.judged else f"not judged ({result.why_not})"
        where = f"line {statement.line}" if statement.line else f"#{statement.number}"
        sql = _cell(statement.sql if len(statement.sql) <= 80 else statement.sql[:77] + "...")
        rows.append(
            f"| {trace.migration} | {where} | `{sql}` | {locks or '–'} | {', '.join(changes) or '–'} | {verdict} |"
        )
    if not rows:
        judged = "✅" if result.judged else f"not judged ({result.why_not})"
        rows.append(
            f"| {trace.migration} | | {len(trace.statements)} statement(s), on what it creates only "
            f"| – | – | {judged} |"
        )
    return rows


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("`", "'")
