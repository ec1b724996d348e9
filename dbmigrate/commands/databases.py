"""The databases themselves: create the missing ones, drop them, stop the embedded server.

The story's db:create and db:drop; dropping is guarded in production (common.guard).
"""

from __future__ import annotations

from dbmigrate.commands.common import NO_OPTIONS, Options, guard
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.reporting import say
from dbmigrate.server import connection, embedded


async def create_databases(settings: Settings, databases: list[Database]) -> None:
    await connection.prepare(settings, databases)
    created = await connection.create_missing_databases(settings, databases)
    say(f"created {', '.join(created)}" if created else "every database already exists")


async def drop_databases(settings: Settings, databases: list[Database], options: Options = NO_OPTIONS) -> None:
    guard(settings, "drop", databases, options.confirm)
    await connection.prepare(settings, databases)
    dropped = await connection.drop_databases(settings, databases)
    say(f"dropped {', '.join(dropped)}" if dropped else "no database to drop")


def stop_embedded(settings: Settings) -> None:
    stopped = embedded.stop(settings.embedded_data_dir)
    say("stopped the embedded PostgreSQL server" if stopped else "the embedded server is not running")
