"""What every command shares: the options the command line adds, the edge where a command
resolves its targets, the production guard, and running one piece of work per database.

Invariant: settings are read here, once per command, and turned into Targets (engine/target.py);
below this layer nothing reads settings or the environment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import complain
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.target import Target
from dbmigrate.server import connection

GUARDED_ENVIRONMENTS = ("production",)


@dataclass(frozen=True)
class Options:
    """What the command line adds to a command: targets, dry runs, confirmations, output format."""

    to: str | None = None
    steps: int | None = None
    dry_run: bool = False
    out_of_order: bool = False
    confirm: str | None = None
    check: bool = False
    json: bool = False
    phase: str | None = None  # PHASE=pre: only pre-deploy migrations (engine/phases.py); None: all


NO_OPTIONS = Options()


async def resolve(settings: Settings, databases: list[Database], shared_numbers: bool = False) -> list[Target]:
    """The edge: ready the server, then resolve each database's target once for the whole command."""
    await connection.prepare(settings, databases)
    return [Target.resolve(settings, database, shared_numbers) for database in databases]


def guard(settings: Settings, command: str, databases: list[Database], confirm: str | None) -> None:
    """Destructive commands in production (and reset in staging) need the databases named in CONFIRM.

    Reset never runs in production at all.
    """
    environment = settings.environment
    if command == "reset" and environment == "production":
        raise UserError("refusing to reset with ORION_ENV=production: reset drops every table, so it never runs there")
    if environment != "production" and not (command == "reset" and environment == "staging"):
        return
    names = [db.name for db in databases]
    confirmed = {name.strip() for name in (confirm or "").split(",") if name.strip()}
    if confirmed != set(names):
        raise UserError(
            f"refusing to {command} {', '.join(names)} with ORION_ENV={environment}: "
            f"confirm by naming the database(s), e.g. CONFIRM={','.join(names)}"
        )


def in_a_checkout(settings: Settings, what: str) -> None:
    """Refuse to write migration files or snapshots into apps installed from the package (a service's
    site-packages, found by config.find_project_root): they belong in a checkout of the repository."""
    if not (settings.project_root / "piccolo_conf.py").is_file():
        raise UserError(
            f"{what} writes into the apps, and these are installed from the package ({settings.project_root}), "
            "not a checkout: run it in a checkout of orion-dbmigrate"
        )


def named(migrations: list[MigrationFile], wanted: str, database: str, variable: str = "ID") -> MigrationFile:
    """The one migration `wanted` names (its whole ID, or its number), or a UsageError saying that
    it names none, or several (two branches that both wrote 004)."""
    wanted = wanted.strip()
    chosen = [m for m in migrations if m.id == wanted]
    if not chosen and wanted.isdigit():
        chosen = [m for m in migrations if m.number == int(wanted)]
    if len(chosen) == 1:
        return chosen[0]
    if chosen:
        ids = ", ".join(m.id for m in chosen)
        raise UsageError(f"{database}: {variable}={wanted} names {len(chosen)} migrations ({ids}): give the whole ID")
    known = ", ".join(m.id for m in migrations) or "none"
    raise UsageError(f"{database}: no migration {wanted!r}; the migrations are: {known}")


def one_database_for_target(databases: list[Database], options: Options) -> None:
    if options.to and len(databases) != 1:
        raise UsageError("TO names a migration of one database: set DB as well")


async def each(items: list, work) -> None:
    """Run `work(item)` for every database (or target) concurrently; report every failure, then fail once."""
    results = await asyncio.gather(*(work(item) for item in items), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, UserError):
            raise failure
    for failure in failures[:-1]:
        complain(str(failure))
    if failures:
        raise failures[-1]
