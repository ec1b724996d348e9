"""The command line: `python -m dbmigrate COMMAND [DATABASE] ...`, the one interface the Makefile
and the noxfile alias. Every failure ends as one line on stderr and a non-zero exit code; set
ORION_DEBUG=1 to see the traceback of an unexpected error.

`python -m dbmigrate --make COMMAND` is how the Makefile calls it: Make's variables (DB, NAME, TO,
...) arrive as environment variables DBMIGRATE_<NAME>, never through a shell, and become the
command's arguments here; a variable the target does not take is refused when typed on make's
command line (and ignored when it only comes from the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
from pathlib import Path

from dbmigrate.cli.make import make_argv
from dbmigrate.cli.parser import ONE_DATABASE_COMMANDS, PRINTING_COMMANDS, parse
from dbmigrate.commands.common import Options
from dbmigrate.core.config import DATABASES, Settings, load_settings, select_databases
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import complain
from dbmigrate.core.urls import redact, redact_url


async def run(args: argparse.Namespace, settings: Settings) -> None:
    """Hand the parsed command to its module in dbmigrate.commands. Each module is imported in its
    branch, not at the top: a no-op migrate then imports only what migrating needs (start-up time)."""
    options = Options(
        to=getattr(args, "to", None),
        steps=getattr(args, "steps", None),
        dry_run=getattr(args, "dry_run", False),
        out_of_order=getattr(args, "out_of_order", False),
        confirm=getattr(args, "confirm", None),
        check=getattr(args, "check", False),
        json=getattr(args, "format", "text") == "json",
        phase=getattr(args, "phase", None),
    )
    if args.command == "stop":
        from dbmigrate.commands import databases as database_commands

        database_commands.stop_embedded(settings)
        return
    if args.command == "migrate-fleet" or getattr(args, "targets", None) is not None:
        from dbmigrate.commands import fleet

        await fleet.run(
            settings, args.command, args.targets, getattr(args, "database", None), args.parallel, args.shard, options
        )
        return
    databases = select_databases(args.database)
    if args.command in ONE_DATABASE_COMMANDS and len(databases) != 1:
        raise UsageError(f"{args.command} acts on one database: name one of {', '.join(DATABASES)}")
    match args.command:
        case "migrate" | "down":
            from dbmigrate.commands import migrate

            match args.command, options.dry_run:
                case "migrate", False:
                    await migrate.migrate(settings, databases, options)
                case "migrate", True:
                    await migrate.dry_run(settings, databases, options)
                case "down", False:
                    await migrate.down(settings, databases[0], options)
                case "down", True:
                    await migrate.dry_run_down(settings, databases[0], options)
        case "create":
            from dbmigrate.commands import create

            await create.create(settings, databases[0], args.name, args.auto, args.transaction != "0", args.phase)
        case "sql":
            from dbmigrate.commands import migration_sql

            await migration_sql.show_sql(settings, databases[0], args.migration, args.down)
        case "renumber":
            from dbmigrate.commands import renumber

            await renumber.renumber(settings, databases[0], args.migration)
        case "status":
            from dbmigrate.commands import status

            await status.status(settings, databases, options)
        case "squash":
            from dbmigrate.commands import squash

            await squash.squash(settings, databases[0], args.to)
        case "pause" | "resume":
            from dbmigrate.commands import batches

            await batches.pause(settings, databases[0], args.migration, args.command == "pause")
        case "repair":
            from dbmigrate.commands import repair

            await repair.repair(settings, databases, options)
        case "baseline" if args.from_tool:
            from dbmigrate.commands import imports

            await imports.baseline_from_tool(settings, databases[0], args.from_tool, options)
        case "baseline":
            from dbmigrate.commands import repair

            await repair.baseline(settings, databases[0], options)
        case "import":
            from dbmigrate.commands import imports

            imports.import_history(settings, databases[0], args.source, args.format)
        case "verify":
            from dbmigrate.commands import verify

            step_summary = settings.get("GITHUB_STEP_SUMMARY")
            summary = args.summary or step_summary
            await verify.verify(
                settings,
                databases,
                verify.VerifyOptions(
                    base=args.base,
                    lint=args.lint,
                    trace=args.trace != "0",
                    json=options.json,
                    summary=Path(summary) if summary else None,
                    append_summary=not args.summary,
                ),
            )
        case "rehearse":
            from dbmigrate.commands import rehearse

            summary = args.summary or settings.get("GITHUB_STEP_SUMMARY")
            await rehearse.rehearse(
                settings,
                databases[0],
                rehearse.RehearseOptions(
                    rows=args.rows,
                    clients=args.clients,
                    max_block=args.max_block,
                    base=args.base,
                    from_db=args.from_db,
                    summary=Path(summary) if summary else None,
                    append_summary=not args.summary,
                    confirm=args.confirm,
                    json=options.json,
                ),
            )
        case "schema-dump":
            from dbmigrate.commands import verify

            await verify.dump_schemas(settings, databases)
        case "seed":
            from dbmigrate.commands import seed

            await seed.seed(settings, databases)
        case "reset":
            from dbmigrate.commands import reset

            await reset.reset(settings, databases, options)
        case "create-databases" | "drop-databases":
            from dbmigrate.commands import databases as database_commands

            if args.command == "create-databases":
                await database_commands.create_databases(settings, databases)
            else:
                await database_commands.drop_databases(settings, databases, options)
        case "shell":
            from dbmigrate.commands import shell

            if len(databases) != 1:
                raise UsageError(f"shell opens one database: name one of {', '.join(DATABASES)}")
            await shell.shell(settings, databases[0])


def main(argv: list[str] | None = None) -> int:
    # Until we know the command (and for --help), a closed pipe ends the process quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--make"]:
        try:
            argv = make_argv(argv[1:], dict(os.environ))
        except UserError as error:
            _fail(str(error), None, error.exit_code)
    args = parse(argv)
    if args.command not in PRINTING_COMMANDS:
        # A migration must never die half-way because whoever read its output (`| head -3`) left.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        sys.stdout = _PipeSafe(sys.stdout)
    settings: Settings | None = None
    try:
        settings = load_settings()
        # Migration files and piccolo_conf import project modules, as under the piccolo CLI.
        sys.path.insert(0, str(settings.project_root))
        asyncio.run(run(args, settings))
    except UserError as error:
        _fail(str(error), settings, error.exit_code)
    except KeyboardInterrupt:
        if args.command == "rehearse":
            _fail("interrupted: the rehearsal's scratch database was dropped; nothing else was changed", settings, 130)
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


class _PipeSafe(io.TextIOBase):
    """sys.stdout that stops writing, silently, once its reader has gone (EPIPE), instead of raising
    BrokenPipeError into whatever was printing."""

    def __init__(self, inner):
        self._inner = inner
        self._closed_pipe = False

    def write(self, text: str) -> int:
        if not self._closed_pipe:
            try:
                self._inner.write(text)
            except (BrokenPipeError, ValueError):
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self._closed_pipe:
            try:
                self._inner.flush()
            except (BrokenPipeError, ValueError):
                self._gone()

    def _gone(self) -> None:
        self._closed_pipe = True
        # Point the file descriptor at /dev/null so the interpreter's final flush is quiet too.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._inner.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def fileno(self) -> int:
        return self._inner.fileno()

    def __getattr__(self, name: str):  # buffer, errors, ...: the real stream's
        return getattr(self._inner, name)

    def isatty(self) -> bool:
        return self._inner.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self):  # type: ignore[override]
        return self._inner.encoding


def _fail(message: str, settings: Settings | None, code: int) -> None:
    # One line, whatever a value quoted in it holds (a NAME or path ending in a newline).
    complain(_scrub(message, settings))
    raise SystemExit(code)


def _scrub(message: str, settings: Settings | None) -> str:
    """`message` with the password field of every URL in it masked. A configured URL too malformed
    for the URL pattern is replaced, wherever it appears verbatim, by its redacted form."""
    if settings is not None:
        for database in DATABASES.values():
            url = settings.get(database.url_variable)
            if url and url in message:
                message = message.replace(url, redact_url(url))
    return redact(message)
