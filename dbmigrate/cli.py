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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and the error: we print one line
        command = "" if self.prog == "dbmigrate" else f" {self.prog.split()[-1]}"
        print(f"error: {message} (see `python -m dbmigrate{command} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(DATABASES)
    parser = _Parser(prog="dbmigrate", description="Orion's database migrations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, database_default: str | None, *flags: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        if database_default != "none":
            default_text = "default all" if database_default is None else f"default {database_default}"
            p.add_argument("database", nargs="?", default=database_default, help=f"{names} or all; {default_text}")
        for flag in flags:
            p.add_argument(f"--{flag}", **_FLAGS[flag])
        return p

    command("migrate", "apply pending migrations", DEFAULT_DATABASE, "to", "dry-run", "out-of-order")
    command("down", "roll back the last applied migration", DEFAULT_DATABASE, "steps", "to", "dry-run", "confirm")
    p = sub.add_parser("create", help="write the next numbered migration")
    p.add_argument("name", help="what it does, e.g. add_order_limits")
    p.add_argument("database", nargs="?", default=DEFAULT_DATABASE, help=f"{names}; default orion")
    p.add_argument("--auto", action="store_true", help="fill it from changes to tables.py")
    command("status", "show applied, pending, modified, missing and failed migrations", None, "check", "format")
    command("repair", "accept changed or deleted migration files as they are now", None, "confirm")
    p = command(
        "baseline", "mark migrations up to --to as applied without running them", DEFAULT_DATABASE, "to", "confirm"
    )
    p.add_argument("--from-tool", metavar="TOOL", help="instead of --to: what this tool's own table says it applied")
    command("verify", "prove migrations on a scratch database: up/down/up, drift, lint, immutability", None, "base")
    command("schema-dump", "write schema/<database>.sql from a database migrated from empty", None)
    command("seed", "load seed data (reference; development data in development and test)", None)
    command("reset", "drop, create, migrate and seed", None, "confirm")
    command("create-databases", "create the databases that do not exist", None)
    command("drop-databases", "drop the databases", None, "confirm")
    command("stop", "stop the embedded PostgreSQL server", "none")
    p = command("import", "write another tool's migrations (dbmate, golang-migrate, flyway, node-pg-migrate)", None)
    p.add_argument("--from", dest="source", required=True, metavar="FOLDER", help="the folder of migrations to import")
    p.add_argument("--format", help="dbmate, golang-migrate, flyway or node-pg-migrate; detected when not given")
    command("shell", "open psql on one database; with piped input, run it and exit", DEFAULT_DATABASE)
    return parser


_FLAGS: dict[str, dict] = {
    "to": {"metavar": "MIGRATION", "help": "a migration ID or number, e.g. 003"},
    "steps": {"type": int, "metavar": "N", "help": "how many migrations to roll back"},
    "dry-run": {"action": "store_true", "help": "print the SQL that would run; change nothing"},
    "out-of-order": {"action": "store_true", "help": "also apply migrations numbered before applied ones"},
    "confirm": {"metavar": "DATABASE", "help": "with ORION_ENV=production, the database's name"},
    "check": {"action": "store_true", "help": "exit non-zero if anything is pending, modified, missing or failed"},
    "format": {"choices": ["text", "json"], "default": "text"},
    "base": {"metavar": "REF", "help": "git ref migrations must match (default: merge base with origin/main, or main)"},
}


async def run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "stop":
        commands.stop_embedded(settings)
        return
    if args.command == "shell":
        from dbmigrate import shell

        databases = select_databases(args.database)
        if len(databases) != 1:
            raise UsageError(f"shell opens one database: name one of {', '.join(DATABASES)}")
        shell.exec_psql(*await shell.command(settings, databases[0]))
    databases = select_databases(args.database)
    if args.command in ("down", "create", "baseline", "import") and len(databases) != 1:
        raise UsageError(f"{args.command} acts on one database: name one of {', '.join(DATABASES)}")
    options = commands.Options(
        to=getattr(args, "to", None),
        steps=getattr(args, "steps", None),
        dry_run=getattr(args, "dry_run", False),
        out_of_order=getattr(args, "out_of_order", False),
        confirm=getattr(args, "confirm", None),
        check=getattr(args, "check", False),
        json=getattr(args, "format", "text") == "json",
    )
    match args.command:
        case "migrate":
            await commands.migrate(settings, databases, options)
        case "down":
            await commands.down(settings, databases[0], options)
        case "create":
            await commands.create(settings, databases[0], args.name, args.auto)
        case "status":
            await commands.status(settings, databases, options)
        case "repair":
            await commands.repair(settings, databases, options)
        case "baseline" if args.from_tool:
            if options.to:
                raise UsageError("baseline takes TO or FROM_TOOL, not both")
            from dbmigrate import adopt

            commands.guard(settings, "baseline", databases, options.confirm)
            await adopt.baseline_from_tool(settings, databases[0], args.from_tool)
        case "import":
            from pathlib import Path

            from dbmigrate import importer

            if not args.source.strip():
                raise UsageError("import needs FROM, the folder of migrations to import")
            importer.import_history(settings, databases[0], Path(args.source), args.format)
        case "baseline":
            await commands.baseline(settings, databases[0], options)
        case "verify":
            await commands.verify(settings, databases, args.base)
        case "schema-dump":
            await commands.schema_dump(settings, databases)
        case "seed":
            await commands.seed(settings, databases)
        case "reset":
            await commands.reset(settings, databases, options)
        case "create-databases":
            await commands.create_databases(settings, databases)
        case "drop-databases":
            await commands.drop_databases(settings, databases, options)


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
        _fail(
            "interrupted: finished migrations are recorded, a transactional one in progress was rolled back; "
            "run status to see where things stand",
            settings,
            130,
        )
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
