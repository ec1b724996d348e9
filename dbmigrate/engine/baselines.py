"""Baselines: one migration standing for the history it squashed (Flyway's `B<version>__`,
Django's `replaces`), and which of the two a database takes.

A baseline file (`make db-migrate-squash`, commands/squash.py) is an SQLMigration with a
`REPLACES = [...]` list of the migration IDs it stands for, read as text like the ID (files.py
leaves such files out of the history). Per database:

  * none of the replaced migrations applied (a new database): the baseline runs in their place,
    and the database's history is the baseline and the migrations after it;
  * any of them applied: the database keeps its history and never runs the baseline; replaced
    migrations whose files were deleted since (the history removed in a later commit) count as
    applied files removed on purpose, not as missing. A database that has some of them but not
    the rest, whose files are gone, cannot go on: it is told to restore them.

Which one each database takes depends only on what it has applied, so every runner of one
database agrees. Invariant: no database ever has both a baseline and a migration it replaces
applied, and a replaced migration is run only on a database that took the history.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from dbmigrate.core.config import Database
from dbmigrate.core.errors import UserError
from dbmigrate.engine import files, phases
from dbmigrate.engine.files import MigrationFile, order_key
from dbmigrate.engine.state import MigrationState


def replaced_ids(text: str, where: str) -> tuple[str, ...]:
    """The IDs a baseline file's `REPLACES = [...]` names, read without importing it."""
    try:
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "REPLACES" for t in targets) and node.value is not None:
                    value = ast.literal_eval(node.value)
                    if isinstance(value, list | tuple) and value and all(isinstance(i, str) for i in value):
                        return tuple(value)
    except (SyntaxError, ValueError):
        pass
    raise UserError(f"{where}: REPLACES must be a list of the migration IDs it replaces, e.g. REPLACES = ['001_a']")


def find(root: Path, database: Database) -> MigrationFile | None:
    """The database's baseline file, or None; two are an error (a new squash replaces the old one)."""
    found = []
    for path in sorted(files.migrations_folder(root, database).glob("*.py")):
        content = path.read_bytes()
        if files.is_baseline(content.decode("utf-8", errors="replace")):
            found.append((path, content))
    return chosen(root, database, found)


def chosen(root: Path, database: Database, candidates: list[tuple[Path, bytes]]) -> MigrationFile | None:
    """The baseline among `candidates` (files.scan's), or None; two are an error."""
    found: list[MigrationFile] = []
    for path, content in candidates:
        text = content.decode("utf-8", errors="replace")
        where = str(path.relative_to(root))
        match = files.ID_LINE.search(text)
        if not match:
            raise UserError(f'{where} has no ID line: a baseline needs one, e.g. ID = "002_squashed"')
        found.append(
            MigrationFile(
                app=database.app,
                id=match.group("id"),
                path=path,
                checksum=files.file_checksum(path, content),
                phase=phases.PRE,
                replaces=replaced_ids(text, where),
                shown=where,
            )
        )
    if len(found) > 1:
        names = ", ".join(m.shown for m in found)
        raise UserError(f"{database.name} has {len(found)} baselines ({names}): keep the newest, delete the others")
    return found[0] if found else None


def history_complete(history: list[MigrationFile] | tuple[MigrationFile, ...], baseline: MigrationFile) -> bool:
    on_disk = {m.id for m in history}
    return all(i in on_disk for i in baseline.replaces)


def arrange(history: list[MigrationFile], baseline: MigrationFile | None) -> list[MigrationFile]:
    """The migrations as a new database walks them: the history while all of it is there (the
    baseline then is a shortcut beside it, `Target.baseline`), else the baseline in its place."""
    if baseline is None or history_complete(history, baseline):
        return list(history)
    return [baseline, *(m for m in history if m.id not in baseline.replaces)]


def effective(state: MigrationState, baseline: MigrationFile | None) -> MigrationState:
    """`state` as this database sees it: through the baseline, or through the history it has."""
    if baseline is None:
        return state
    replaced = set(baseline.replaces)
    rest = [m for m in state.files if m.id != baseline.id and m.id not in replaced]
    if not any(i in state.applied for i in replaced):
        return replace(state, files=[baseline, *rest])
    on_disk = {m.id for m in state.files}
    # Replaced migrations after the last one this database has would still have to run. (Those
    # before it that it lacks were covered by an older baseline it ran.)
    reached = max((order_key(i) for i in replaced if i in state.applied), default=(0, 0, ""))
    gone = [i for i in baseline.replaces if i not in state.applied and i not in on_disk and order_key(i) > reached]
    if gone:
        has = [i for i in baseline.replaces if i in state.applied]
        raise UserError(
            f"{state.database}: has {', '.join(has)} of the migrations baseline {baseline.id} replaces, but not "
            f"{', '.join(gone)}, whose file(s) are gone: restore them from version control (git log --diff-filter=D "
            "-- <migrations folder>) to migrate this database forward"
        )
    applied = {
        i: replace(a, file_removed=True) if i in replaced and i not in on_disk else a for i, a in state.applied.items()
    }
    return replace(state, files=[m for m in state.files if m.id != baseline.id], applied=applied)


def piccolo_skipped(on_disk: set[str], baseline: MigrationFile | None) -> set[str]:
    """Of the migration IDs `on_disk`, those Piccolo's schema snapshot must leave out, so that it
    sees the history or the baseline, never both: the baseline while the history is all there,
    else what is left of the history."""
    if baseline is None:
        return set()
    if all(i in on_disk for i in baseline.replaces):
        return {baseline.id}
    return set(baseline.replaces)
