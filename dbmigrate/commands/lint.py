"""verify's lint: every migration's SQL through squawk (.squawk.toml), with the file's own lines.

A migration exempts a rule with a reason: SQUAWK_EXEMPT = {"rule": "why"} (an empty reason is
refused). Piccolo operations are linted as the DDL Piccolo previews for them. Findings name the
migration's file (or its .sql sibling) and the line there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.core.text import read_utf8
from dbmigrate.engine.files import shown_path
from dbmigrate.engine.migration import Migration
from dbmigrate.engine.target import Target

SQUAWK_CONFIG = ".squawk.toml"


async def lint(scratch: Target, migrations: list[Migration], report, on_base: set[Path] | None) -> None:
    """Lint every migration, or (on_base given) only those whose files are not on the base branch."""
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(squawk).exists():
        report.check("lint", ["squawk is not installed: run `make venv`"], "")
        return
    chosen = [m for m in migrations if on_base is None or m.file.path not in on_base]
    config = scratch.project_root / SQUAWK_CONFIG
    problems: list[str] = []
    async with scratch.connected("lint") as conn:
        with tempfile.TemporaryDirectory() as folder:
            for migration in chosen:
                problems += await _lint_one(conn, squawk, config, Path(folder), migration, scratch.project_root)
    scope = "" if on_base is None else f" not on the base branch ({len(migrations) - len(chosen)} left out: LINT=new)"
    report.check("lint", problems, f"squawk finds nothing in {len(chosen)} migration(s){scope}")


async def _lint_one(conn, squawk: str, config: Path, folder: Path, migration: Migration, root: Path) -> list[str]:
    exempt = migration.options.squawk_exempt
    unreasoned = [rule for rule, reason in exempt.items() if not str(reason).strip()]
    if unreasoned:
        return [f"{migration.id}: SQUAWK_EXEMPT needs a reason for {', '.join(unreasoned)}"]
    sources_by_file: dict[str, str] = {}
    for source in await migration.lint_sources(conn):
        # Blank lines before the SQL put each statement at its line in its own file.
        padded = sources_by_file.get(source.path, "")
        gap = max(source.first_line - 1 - padded.count("\n"), 0)
        sources_by_file[source.path] = padded + "\n" * gap + source.text
    findings: list[str] = []
    for index, (shown, sql) in enumerate(sources_by_file.items()):
        path = folder / f"{migration.file.app}_{index}_{migration.id}.sql"
        path.write_text(sql)
        findings += _squawk(squawk, config, path, migration, exempt, shown_path(shown, root))
    return findings


def _squawk(squawk: str, config: Path, path: Path, migration: Migration, exempt: dict, shown: str) -> list[str]:
    command = [squawk, "--reporter=gcc", f"--config={config}", str(path)]
    if migration.transactional:
        command.append("--assume-in-transaction")
    if exempt:
        # squawk's --exclude replaces the config file's excluded_rules rather than adding to them.
        configured = _squawk_config(config).get("excluded_rules", []) if config.exists() else []
        command.append(f"--exclude={','.join([*configured, *exempt])}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    findings = [line for line in result.stdout.splitlines() if re.search(r": (warning|error): ", line)]
    if result.returncode != 0 and not findings:  # e.g. an unknown rule name: nothing was linted
        reason = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}").splitlines()[0]
        return [f"{migration.id}: squawk could not lint it: {reason}"]
    return [f"{migration.id}: {_finding(line, shown)}" for line in findings]


def _finding(gcc_line: str, shown: str) -> str:
    """`file.sql:12:3: warning: rule-name message` -> `orion/.../x.py line 13: rule-name message`
    (squawk counts lines from 0)."""
    match = re.match(r".*?:(\d+):\d+: (?:warning|error): (.*)", gcc_line)
    return f"{shown} line {int(match.group(1)) + 1}: {match.group(2)}" if match else gcc_line


def _squawk_config(config: Path) -> dict:
    try:
        return tomllib.loads(read_utf8(config, config.name))
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{config.name} does not parse ({error}): fix it, it is TOML") from None
