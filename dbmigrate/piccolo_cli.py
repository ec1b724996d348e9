"""Piccolo's own CLI, made safe: `piccolo migrations forwards|backwards|check|new <app>` works on
that app's own database, with no environment variable, and never on another app's.

Piccolo sends every migration command to the one engine of piccolo_conf.py. `install()` (called
from piccolo_conf.py) wraps the few Piccolo methods that work on one app at a time so that:

  * forwards runs through dbmigrate's executor: the app's database, its migration lock, atomic
    bookkeeping and checksums, the same as `make db-migrate DB=<app>`;
  * backwards runs through dbmigrate's rollback (`down` with the right number of steps), so an
    irreversible migration is refused rather than "reversed";
  * check reads each app's bookkeeping in that app's database;
  * new writes the next numbered migration (`make db-migrate-create`), so files made by either
    tool interleave in one order; a plain `new` writes the SQL skeleton, `--auto` Piccolo's
    operations, formatted as `make lint` wants them.

Deploy phases (engine/phases.py): ORION_MIGRATE_PHASE=pre makes forwards apply only pre-deploy
migrations (as `make db-migrate PHASE=pre`), and ORION_MIGRATE_PHASE=post makes new write a
post-deploy one. --fake and --preview keep Piccolo's own behaviour, routed to the app's database. Inside dbmigrate's
commands nothing here runs: the executor never calls these Piccolo methods.
"""

from __future__ import annotations

import re
import sys
from functools import wraps

from dbmigrate.commands import create
from dbmigrate.commands.common import resolve
from dbmigrate.core.config import DATABASES, load_settings
from dbmigrate.core.errors import UserError
from dbmigrate.engine import bookkeeping, executor, phases, planning
from dbmigrate.engine.files import order_key
from dbmigrate.engine.piccolo_engine import app_database, order_by_number
from dbmigrate.engine.state import select as select_phase

_installed = False
PHASE_SETTING = "ORION_MIGRATE_PHASE"  # `ORION_MIGRATE_PHASE=pre piccolo migrations forwards orion`


def install() -> None:
    global _installed
    if _installed:
        return
    from piccolo.apps.migrations.commands import new
    from piccolo.apps.migrations.commands.backwards import BackwardsMigrationManager
    from piccolo.apps.migrations.commands.check import CheckMigrationManager
    from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
    from piccolo.apps.migrations.tables import Migration

    ForwardsMigrationManager.run = _routed(ForwardsMigrationManager.run, "forwards")
    BackwardsMigrationManager.run = _routed(BackwardsMigrationManager.run, "backwards")
    CheckMigrationManager.get_migration_statuses = _check(CheckMigrationManager.get_migration_statuses)
    Migration.get_migrations_which_ran = _per_app_classmethod(Migration.get_migrations_which_ran)
    new._create_new_migration = _new
    Migration._meta.schema = bookkeeping.SCHEMA  # Piccolo's table where ours is, whatever the search_path
    order_by_number()  # check, --fake and the schema snapshot order IDs as dbmigrate does
    _installed = True


def _refusal(app: str) -> str | None:
    if app not in DATABASES:
        return f"{app!r} is not one of dbmigrate's apps ({', '.join(DATABASES)})"
    return None


def _result(success: bool, message: str):
    from piccolo.apps.migrations.commands.base import MigrationResult

    return MigrationResult(success=success, message=message)


def _routed(original, direction: str):
    """A manager's run(): refuse apps that are not ours; Piccolo's own --fake/--preview on the app's
    database; everything else through dbmigrate."""

    @wraps(original)
    async def run(self):
        refused = _refusal(self.app_name)
        if refused:
            print(f"error: {refused}", file=sys.stderr)
            return _result(False, refused)
        if getattr(self, "fake", False) or self.preview:
            with app_database(self.app_name):
                return await original(self)
        auto_agree = getattr(self, "auto_agree", True)
        return await _through_dbmigrate(self.app_name, direction, self.migration_id, auto_agree)

    return run


async def _through_dbmigrate(app: str, direction: str, migration_id: str, auto_agree: bool = True):

    try:
        settings = load_settings()
        (target,) = await resolve(settings, [DATABASES[app]])
        if direction == "forwards":
            phase = _phase(settings)
            to = None if migration_id == "all" else migration_id
            if migration_id == "1":
                async with target.connected("piccolo forwards") as conn:
                    pending = select_phase((await planning.read_state(target, conn)).pending, phase)
                to = pending[0].id if pending else None
            ids = await executor.migrate(target, to, phase=phase)
            return _result(True, f"applied {len(ids)} migration(s)")
        steps = await _steps_back(target, migration_id)
        if steps == 0:
            print("🏁 No migrations to reverse!")
            return _result(True, "nothing to reverse")
        if not auto_agree and input(f"Reverse {steps} migration{'s' if steps != 1 else ''}? [y/N] ").lower() != "y":
            return _result(False, "Not proceeding.")
        ids = await executor.rollback(target, steps=steps)
        return _result(True, f"reverted {len(ids)} migration(s)")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return _result(False, str(error))


def _phase(settings) -> str | None:
    """ORION_MIGRATE_PHASE (pre|post): Piccolo's command line has no place for our PHASE."""
    try:
        return phases.check(settings.get(PHASE_SETTING))
    except ValueError as error:
        raise UserError(f"{PHASE_SETTING}: {error}") from None


async def _steps_back(target, migration_id: str) -> int:
    """Piccolo's backwards argument as a number of steps: "1", "all", or an ID and all after it."""

    async with target.connected("piccolo backwards") as conn:
        applied = (await planning.read_state(target, conn)).applied
    newest_first = sorted(applied, key=lambda i: applied[i].sequence, reverse=True)
    if migration_id == "1":
        return min(1, len(newest_first))
    if migration_id == "all":
        return len(newest_first)
    if migration_id not in applied:
        shown = ", ".join(sorted(applied, key=order_key)) or "none"
        raise UserError(f"{target.name}: {migration_id} is not applied; applied: {shown}")
    return newest_first.index(migration_id) + 1


def _check(original):
    @wraps(original)
    async def get_migration_statuses(self):
        apps = list(DATABASES) if self.app_name == "all" else [self.app_name]
        statuses = []
        for app in apps:
            refused = _refusal(app)
            if refused:
                raise UserError(refused)
            one_app = type(self)(app_name=app)
            with app_database(app):
                statuses += await original(one_app)
        return statuses

    return get_migration_statuses


def _per_app_classmethod(original):
    function = original.__func__

    @wraps(function)
    async def get_migrations_which_ran(cls, app_name=None):
        if app_name in DATABASES:
            with app_database(app_name):
                return await function(cls, app_name)
        return await function(cls, app_name)

    return classmethod(get_migrations_which_ran)


async def _new(app_config, auto: bool = False, description: str = "", auto_input=None):
    from piccolo.apps.migrations.commands.new import NewMigrationMeta, NoChanges

    app = app_config.app_name
    refused = _refusal(app)
    if refused:
        raise UserError(refused)
    description = description if isinstance(description, str) else ""  # `--desc` without a value
    name = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")[:40] or ("auto" if auto else "migration")
    if not name[0].isalpha():
        name = f"m_{name}"
    settings = load_settings()
    path = await create.create(settings, DATABASES[app], name, auto, phase=_phase(settings))
    if path is None:
        raise NoChanges()
    migration_id = path.stem[len(app) + 1 :]
    return NewMigrationMeta(migration_id=migration_id, migration_filename=path.stem, migration_path=str(path))
