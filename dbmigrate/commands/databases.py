"""The databases themselves: create the missing ones, drop them, stop the embedded server (and
remove the test cluster's data, a cache in RAM).

The story's db:create and db:drop; dropping is guarded in production (common.guard).
"""

from __future__ import annotations

from dbmigrate.commands.common import NO_OPTIONS, Options, guard
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.releases import RELEASES
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
    """Stop the embedded server; stop each test cluster of this project no test session is using,
    and remove its data."""
    stopped = embedded.stop(settings.embedded_data_dir)
    say("stopped the embedded PostgreSQL server" if stopped else "the embedded server is not running")
    for major in RELEASES:
        cluster = embedded.data_dir_for_tests(settings.embedded_data_root, major)
        if not cluster.exists():
            continue
        users = embedded.sessions_using(cluster)
        if users:
            say(f"left the test cluster in {cluster} running: pytest (pid {', '.join(map(str, users))}) is using it")
            continue
        freed = embedded.remove_test_cluster(cluster)
        embedded.remove_test_cluster_files(cluster)
        say(f"stopped the test cluster and removed its data, {cluster} ({freed / 1e6:.0f} MB)")
