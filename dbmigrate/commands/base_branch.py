"""The base branch: what git says the migrations were there, for verify's immutability check (a
committed migration never changes, new ones number after) and for rehearsal's BASE=ref.

Without git or a base to compare with, the check is skipped, saying why. Invariant: git is only
read (vcs.py), never asked to change the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.commands import vcs
from dbmigrate.core.errors import UserError
from dbmigrate.engine import files
from dbmigrate.engine.target import Target


def immutability(target: Target, base: str | None) -> tuple[list[str], str, set[Path] | None, str | None]:
    """(problems, what passed, the migration files on the base branch or None, why it was skipped or
    None) against the base branch."""
    root, migrations = target.project_root, target.files
    if not vcs.in_checkout(root):
        return [], "", None, "not a git checkout, so there is no base branch to compare with"
    base = base or vcs.default_base(root)
    if base is None:
        return [], "", None, "no BASE, origin/main or main to compare with"
    if re.fullmatch(r"0+", base):  # GitHub's "before" of a push that creates a branch
        return [], "", set(), "a new branch: nothing to compare with"
    at_base = _listed(target, base)
    if at_base is None:
        return [f"BASE {base!r} is not a commit git knows"], "", None, None
    problems = []
    for relative in at_base:
        current = root / relative
        if not current.exists():
            problems.append(f"{relative} exists on {base} but was deleted: never remove committed migrations")
        elif current.read_bytes() != vcs.git_show(root, f"{base}:{relative}"):
            problems.append(f"{relative} differs from {base}: never modify committed migrations, write a new one")
    base_paths = {root / p for p in at_base}
    numbers_at_base = [m.number for m in migrations if m.path in base_paths and m.number is not None]
    highest = max(numbers_at_base, default=0)
    for migration in migrations:
        if migration.path not in base_paths and migration.number is not None and migration.number <= highest:
            problems.append(
                f"{migration.shown} is new but numbered {migration.number:03d}, not after "
                f"{highest:03d} on {base}: renumber it {highest + 1:03d} or later"
            )
    passed = f"{len(at_base)} migration file(s) on {base} unchanged; new ones number after them"
    return problems, passed, base_paths, None


def paths_at(target: Target, base: str) -> set[Path]:
    """The migration files (.py) of `target`'s database on git ref `base`; a UserError when
    there is no git checkout or git does not know the ref."""
    root = target.project_root
    if not vcs.in_checkout(root):
        raise UserError(f"BASE={base} needs a git checkout, and {root} is not one: leave BASE unset")
    listed = _listed(target, base)
    if listed is None:
        raise UserError(f"BASE={base!r} is not a commit git knows: name a branch, tag or commit")
    return {root / p for p in listed if p.endswith(".py")}


def _listed(target: Target, base: str) -> list[str] | None:
    root = target.project_root
    folder = files.migrations_folder(root, target.database).relative_to(root)
    listed = vcs.files_at(root, base, folder)
    if listed is None:
        return None
    return [p for p in listed if p.endswith((".py", ".sql")) and not p.endswith("__init__.py")]
