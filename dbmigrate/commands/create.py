"""create: write the next numbered migration of a database (the story's db:migrate:create): an SQL
skeleton, a non-transactional one, or Piccolo's auto-migration from tables.py (scaffold.py writes
the text), marked post-deploy with PHASE=post (engine/phases.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.commands.common import in_a_checkout
from dbmigrate.commands.scaffold import auto_migration_source, sql_migration_source, with_phase
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError
from dbmigrate.core.reporting import say
from dbmigrate.engine import files

MAX_MIGRATION_NAME = 60
MIGRATION_NAME = re.compile(r"[a-z][a-z0-9_]*")


async def create(
    settings: Settings, database: Database, name: str, auto: bool, transactional: bool = True, phase: str | None = None
) -> Path | None:
    """Write the next numbered migration of `database` (PHASE=post: a post-deploy one); None when
    `auto` finds no change."""
    in_a_checkout(settings, "create")
    if len(name) > MAX_MIGRATION_NAME:
        raise UsageError(
            f"migration name {name[:20]!r}... is {len(name)} characters long; the most is {MAX_MIGRATION_NAME} "
            "(Piccolo's bookkeeping keeps 200 for the whole ID): shorten it"
        )
    if not MIGRATION_NAME.fullmatch(name):  # not match: "$" also matches before a final newline
        raise UsageError(
            f"migration name {name!r} is not usable: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. add_order_limits)"
        )
    existing = files.discover(settings.project_root, database)
    number = max((m.number or 0 for m in existing), default=0) + 1
    migration_id = f"{number:03d}_{name}"
    folder = files.migrations_folder(settings.project_root, database)
    path = folder / f"{database.app}_{migration_id}.py"
    if auto:
        if not transactional:
            raise UsageError("AUTO=1 writes Piccolo operations, which run in a transaction: drop TRANSACTION=0")
        source = await auto_migration_source(database.app, migration_id, name, settings.project_root)
        if source is None:
            say(f"{database.name}: no changes detected in {database.app}/tables.py; no migration written")
            return None
    else:
        source = sql_migration_source(database.app, migration_id, name, transactional)
    path.write_text(with_phase(source, phase), encoding="utf-8")
    say(f"{database.name}: created {path.relative_to(settings.project_root)}")
    return path
