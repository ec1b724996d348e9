"""The command line: `python -m dbmigrate COMMAND [DATABASE] ...`, the one interface the Makefile
and the noxfile alias. Every failure ends as one line on stderr and a non-zero exit code; set
ORION_DEBUG=1 to see the traceback of an unexpected error."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from urllib.parse import unquote, urlsplit

from dbmigrate import commands
from dbmigrate.config import DATABASES, Settings, load_settings, select_databases
from dbmigrate.errors import UsageError, UserError
from dbmigrate.urls import redact

DEFAULT_DATABASE = "orion"  # the story's db:migrate, :down and :create act on orion


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(DATABASES)
    parser = argparse.ArgumentParser(prog="dbmigrate", description="Orion's database migrations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def database_argument(p: argparse.ArgumentParser, default: str | None, help_all: str) -> None:
        p.add_argument("database", nargs="?", default=default, help=f"{names} or all; {help_all}")

    p = sub.add_parser("migrate", help="apply pending migrations")
    database_argument(p, DEFAULT_DATABASE, "default orion")
    p = sub.add_parser("down", help="roll back the last applied migration")
    database_argument(p, DEFAULT_DATABASE, "default orion")
    p = sub.add_parser("create", help="write the next numbered migration")
    p.add_argument("name", help="what it does, e.g. add_order_limits")
    database_argument(p, DEFAULT_DATABASE, "default orion")
    p.add_argument("--auto", action="store_true", help="fill it from changes to tables.py")
    p = sub.add_parser("status", help="show applied and pending migrations")
    database_argument(p, None, "default all")
    p = sub.add_parser("create-databases", help="create the databases that do not exist")
    database_argument(p, None, "default all")
    p = sub.add_parser("drop-databases", help="drop the databases")
    database_argument(p, None, "default all")
    sub.add_parser("stop", help="stop the embedded PostgreSQL server")
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "stop":
        commands.stop_embedded(settings)
        return
    databases = select_databases(args.database)
    if args.command in ("down", "create") and len(databases) != 1:
        raise UsageError(f"{args.command} acts on one database: name one of {', '.join(DATABASES)}")
    match args.command:
        case "migrate":
            await commands.migrate(settings, databases)
        case "down":
            await commands.down(settings, databases[0])
        case "create":
            await commands.create(settings, databases[0], args.name, args.auto)
        case "status":
            await commands.status(settings, databases)
        case "create-databases":
            await commands.create_databases(settings, databases)
        case "drop-databases":
            await commands.drop_databases(settings, databases)


def main(argv: list[str] | None = None) -> int:
    # `dbmigrate status | head` should end quietly when head stops reading, like any Unix tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings()
        # Migration files and piccolo_conf import project modules, as under the piccolo CLI.
        sys.path.insert(0, str(settings.project_root))
        asyncio.run(run(args, settings))
    except UserError as error:
        _fail(str(error), settings, error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; every migration that finished is recorded, the one running was rolled back", settings, 130)
    except Exception as error:
        if os.environ.get("ORION_DEBUG"):
            raise
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _fail(f"unexpected {type(error).__name__}: {detail} (ORION_DEBUG=1 shows the traceback)", settings, 1)
    return 0


def _fail(message: str, settings: Settings | None, code: int) -> None:
    print(f"error: {_scrub(message, settings)}", file=sys.stderr)
    raise SystemExit(code)


def _scrub(message: str, settings: Settings | None) -> str:
    """Remove every configured password from `message`, however it came to be in it."""
    message = redact(message)
    if settings is None:
        return message
    for database in DATABASES.values():
        url = settings.get(database.url_variable)
        if not url:
            continue
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        for secret in filter(None, {password, password and unquote(password)}):
            message = message.replace(secret, "***")
    return message
