"""`make db-shell DB=rfq`: psql on one database, like Django's dbshell.

On the embedded server it is that server's own psql (the pinned build of ORION_PG_VERSION); on a
configured server, ORION_PG_BIN's psql, else the pinned build of the newest major (psql talks to
every older server). The connection goes through libpq's environment variables, so a password never
shows on a command line. With input piped in (`make db-shell DB=rfq < report.sql`), psql runs it,
stops at the first error and exits non-zero on it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from dbmigrate.core.config import Database, Settings
from dbmigrate.core.releases import DEFAULT_MAJOR
from dbmigrate.server import connection
from dbmigrate.server import install as postgres_install
from dbmigrate.server.schema_dump import libpq_env


def psql_for(settings: Settings) -> Path:
    for folder in os.environ.get("ORION_PG_BIN", "").split(os.pathsep):
        if folder and (Path(folder) / "psql").exists():
            return Path(folder) / "psql"
    major = settings.postgres_major if settings.uses_embedded_server else DEFAULT_MAJOR
    return postgres_install.ensure_installed(major) / "psql"


async def command(settings: Settings, database: Database) -> tuple[str, list[str], dict[str, str]]:
    """The psql program, its arguments and its environment for `database` (the server started if
    it is the embedded one)."""
    await connection.prepare(settings, [database])
    url = connection.url_for(settings, database)
    psql = psql_for(settings)
    args = [str(psql)]
    if not sys.stdin.isatty():
        args += ["-X", "-v", "ON_ERROR_STOP=1"]  # a script: no .psqlrc, stop at the first error
    env = {**os.environ, **libpq_env(url), "PGAPPNAME": connection.application_name("shell")}
    return str(psql), args, env


async def shell(settings: Settings, database: Database) -> None:
    exec_psql(*await command(settings, database))


def exec_psql(program: str, args: list[str], env: dict[str, str]) -> None:
    """Replace this process with psql: its exit code, its terminal, its signals are the user's."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # an ignored signal would stay ignored in psql
    os.execve(program, args, env)
