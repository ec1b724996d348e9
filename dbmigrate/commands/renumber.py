"""renumber (`make db-migrate-renumber DB=orion ID=004_add_x`): move a migration that is not applied
yet after the last one, for two branches that both wrote 004.

It renames the file (and its .up.sql / .down.sql siblings) and rewrites the ID in it; nothing else
changes. Invariant: it never touches a migration that is applied (the database is asked, and a
migration recorded as applied, failed or incomplete is refused) or that is on the base branch (git
is asked: merged migrations are applied elsewhere and must keep their checksum), so no applied
migration's checksum ever changes.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.commands import vcs
from dbmigrate.commands.common import in_a_checkout, named, resolve
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine import files, planning
from dbmigrate.engine.files import MigrationFile

_NUMBER = re.compile(r"^(?P<digits>\d+)(?P<rest>_.*)?$")


async def renumber(settings: Settings, database: Database, migration_id: str) -> str:
    """Renumber the unapplied migration `migration_id` after the last one; return its new ID."""
    in_a_checkout(settings, "renumber")
    (target,) = await resolve(settings, [database], shared_numbers=True)  # two 004s are why it runs
    root, name = target.project_root, database.name
    migrations = list(target.files)
    chosen = named(migrations, migration_id, name)
    where = chosen.shown
    match = _NUMBER.match(chosen.id)
    if match is None:
        raise UserError(f"{name}: {chosen.id} is not numbered (a timestamp ID sorts on its own): nothing to renumber")
    highest = max(m.number or 0 for m in migrations)
    if chosen.number == highest and sum(m.number == highest for m in migrations) == 1:
        say(f"{name}: {chosen.id} is already the last migration: nothing to renumber")
        return chosen.id
    async with target.connected("renumber") as conn:
        state = await planning.read_state(target, conn)
    if chosen.id in state.applied:
        raise UserError(
            f"{name}: {chosen.id} is applied to {target.shown_url}, so its ID and checksum are recorded: roll it "
            f"back first (make db-migrate-down DB={name}), renumber it, then migrate"
        )
    if chosen.id in state.failed:
        raise UserError(f"{name}: {chosen.id} is recorded as failed midway: finish or repair it before renumbering")
    _refuse_if_merged(root, chosen)
    new_id = f"{highest + 1:0{max(3, len(match['digits']))}d}{match['rest'] or ''}"
    moved = _move(chosen, new_id, root)
    siblings = f", with {', '.join(p.name for p in moved[1:])}" if len(moved) > 1 else ""
    say(f"{name}: renumbered {chosen.id} to {new_id}: {moved[0].relative_to(root)} (was {where}){siblings}")
    return new_id


def _refuse_if_merged(root: Path, migration: MigrationFile) -> None:
    """A migration on the base branch is applied wherever the base is deployed: never renumber it."""
    if not vcs.in_checkout(root):
        return
    base = vcs.default_base(root)
    top = vcs.git(root, "rev-parse", "--show-toplevel")
    if base is None or top is None:
        return
    relative = migration.path.resolve().relative_to(Path(top).resolve())
    if str(relative) in (vcs.files_at(root, base, relative.parent) or []):
        raise UserError(
            f"{migration.id} ({migration.shown}) is on {base}, so it is applied wherever that is "
            "deployed: renumber the migration that is new on this branch instead"
        )


def _move(migration: MigrationFile, new_id: str, root: Path) -> list[Path]:
    """Rename the file and its sibling .sql files to `new_id` and rewrite the ID in the file."""
    old = migration.path
    stem = old.stem.replace(migration.id, new_id) if migration.id in old.stem else f"{migration.app}_{new_id}"
    new = old.with_name(stem + old.suffix)
    siblings = files.sibling_sql_files(old)
    renamed = [(s, new.with_name(stem + s.name[len(old.stem) :])) for s in siblings]
    for destination in [new, *(d for _, d in renamed)]:
        if destination.exists():
            raise UserError(f"{destination.relative_to(root)} already exists: nothing was renamed")
    quoted = re.compile(r"""(?P<q>['"])""" + re.escape(migration.id) + r"(?P=q)")
    text = old.read_text(encoding="utf-8")
    rewritten = quoted.sub(lambda m: f"{m['q']}{new_id}{m['q']}", text)
    if rewritten == text:
        raise UserError(f"{migration.shown} does not spell its ID {migration.id!r} in quotes: rename it by hand")
    new.write_text(rewritten, encoding="utf-8")
    old.unlink()
    for source, destination in renamed:
        source.rename(destination)
    return [new, *(d for _, d in renamed)]
