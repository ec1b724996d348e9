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

from dbmigrate.commands.common import Options
from dbmigrate.core.config import DATABASES, Settings, load_settings, select_databases
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.urls import redact, redact_url

DEFAULT_DATABASE = "orion"  # the story's db:migrate, :down and :create act on orion
ONE_DATABASE_COMMANDS = ("down", "create", "baseline", "import")
# Commands whose only job is printing: when the reader of a pipe goes away (`| head`) they end
# quietly, as Unix tools do. Every other command keeps running and keeps recording what it did.
PRINTING_COMMANDS = ("status",)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and the error: we print one line
        command = "" if self.prog == "dbmigrate" else f" {self.prog.split()[-1]}"
        print(f"error: {message} (see `python -m dbmigrate{command} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(DATABASES)
    parser = _Parser(prog="dbmigrate", description="Orion's database migrations.")
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, database_default: str | None, *flags: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        if database_default != "none":
            # down, create and baseline act on one database; the others take lists and all too.
            choices = names if name in ONE_DATABASE_COMMANDS else f"{names}, a list (orion,rfq) or all"
            p.add_argument(
                "database", nargs="?", default=database_default, help=f"{choices}; default {database_default or 'all'}"
            )
        for flag in flags:
            p.add_argument(f"--{flag}", **_FLAGS[flag])
        return p

    command("migrate", "apply pending migrations", DEFAULT_DATABASE, "to", "dry-run", "out-of-order")
    command("down", "roll back the last applied migration", DEFAULT_DATABASE, "steps", "to", "dry-run", "confirm")
    p = sub.add_parser("create", help="write the next numbered migration")
    p.add_argument("name", help="what it does, e.g. add_order_limits")
    p.add_argument("database", nargs="?", default=DEFAULT_DATABASE, help=f"{names}; default orion")
    p.add_argument("--auto", action="store_true", help="fill it from changes to tables.py")
    p.add_argument(
        "--transaction",
        choices=["0", "1"],
        default="1",
        help="0 writes a non-transactional migration (CREATE INDEX CONCURRENTLY), run one statement at a time",
    )
    command(
        "status",
        "show applied, pending, modified, missing and failed migrations",
        None,
        *("check", "format", "targets", "parallel", "shard"),
    )
    command(
        "migrate-fleet",
        "migrate every database listed in --targets, --parallel at once (fleet.py)",
        "none",
        *("targets", "parallel", "to", "dry-run", "out-of-order", "shard"),
    )
    command("repair", "accept changed or deleted migration files as they are now", None, "confirm")
    p = command(
        "baseline", "mark migrations up to --to as applied without running them", DEFAULT_DATABASE, "to", "confirm"
    )
    p.add_argument("--from-tool", metavar="TOOL", help="instead of --to: what this tool's own table says it applied")
    command("verify", "prove migrations on a scratch db: up/down/up, drift, lint, immutability", None, "base", "lint")
    command("schema-dump", "write schema/<database>.sql from a database migrated from empty", None)
    command("seed", "load seed data (reference; development data in development and test)", None)
    command("reset", "drop, create, migrate and seed", None, "confirm")
    command("create-databases", "create the databases that do not exist", None)
    command("drop-databases", "drop the databases", None, "confirm")
    command("stop", "stop the embedded PostgreSQL server", "none")
    p = command("import", "write another tool's migrations (dbmate, golang-migrate, flyway, node-pg-migrate)", None)
    p.add_argument("--from", dest="source", default="", metavar="FOLDER", help="the folder of migrations to import")
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
    "lint": {"choices": ["all", "new"], "default": "all", "help": "new: lint only migrations not on the base"},
    "base": {"metavar": "REF", "help": "git ref migrations must match (default: merge base with origin/main, or main)"},
    "targets": {"metavar": "FILE", "help": "a fleet: one `<kind> <url>` per line (kind orion, rfq or marketdata)"},
    "parallel": {"type": lambda text: _whole_number(text, "PARALLEL"), "metavar": "N", "help": "databases at once"},
    "shard": {"metavar": "I/N", "help": "only every N-th target from the I-th: one of N jobs of an orchestrator"},
}


def _whole_number(text: str, variable: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{variable}={text!r} is not a whole number from 1: write e.g. {variable}=8")
    return int(text)


# ---- Make's variables -------------------------------------------------------------------------

# Every variable the Makefile passes (as DBMIGRATE_<NAME>), and the CLI argument it becomes.
MAKE_VARIABLES = {
    "DB": "database",
    "NAME": "name",
    "TO": "--to",
    "STEPS": "--steps",
    "CONFIRM": "--confirm",
    "FORMAT": "--format",
    "BASE": "--base",
    "AUTO": "--auto",
    "TRANSACTION": "--transaction",
    "LINT": "--lint",
    "CHECK": "--check",
    "DRY_RUN": "--dry-run",
    "OUT_OF_ORDER": "--out-of-order",
    "FROM": "--from",
    "FROM_TOOL": "--from-tool",
    "TARGETS": "--targets",
    "PARALLEL": "--parallel",
    "SHARD": "--shard",
}
_SWITCH_ON = ("1", "yes", "true", "on")
_SWITCH_OFF = ("", "0", "no", "false", "off")


def make_argv(recipe: list[str], environ: dict[str, str]) -> list[str]:
    """The CLI arguments for a Make recipe `dbmigrate --make COMMAND [FIXED_DATABASE]`, built from
    the DBMIGRATE_* variables in `environ`. Raises UsageError naming the Make variable at fault."""
    if not recipe:
        raise UsageError("--make needs a command")
    command, fixed = recipe[0], recipe[1:]
    target = environ.get("DBMIGRATE_TARGET") or "this target"
    typed = set(environ.get("DBMIGRATE_COMMAND_LINE", "").split())
    subparser = _subparsers(build_parser()).get(command)
    if subparser is None:
        raise UsageError(f"--make: unknown command {command!r}")
    takes = {a.dest if not a.option_strings else a.option_strings[0] for a in subparser._actions}
    if fixed:
        takes.discard("database")
    if fixed == ["all"]:
        takes.discard("--to")  # a migration ID belongs to one database
    accepted = [var for var, arg in MAKE_VARIABLES.items() if arg in takes]
    flags: list[str] = []
    positionals: dict[str, str] = {}
    for variable, argument in MAKE_VARIABLES.items():
        value = environ.get(f"DBMIGRATE_{variable}", "")
        if not value.strip():
            continue
        if variable not in accepted:
            if variable in typed:
                raise UsageError(_not_taken(target, variable, fixed, accepted))
            continue  # set in the environment for some other purpose: not ours to judge
        if argument in ("database", "name"):
            positionals[argument] = value.strip()
        elif variable in ("AUTO", "CHECK", "DRY_RUN", "OUT_OF_ORDER"):
            if value.strip().lower() in _SWITCH_ON:
                flags.append(argument)
            elif value.strip().lower() not in _SWITCH_OFF:
                raise UsageError(f"{variable}={value!r} is not understood: write {variable}=1, or leave it unset")
        elif variable == "STEPS":
            if not value.strip().isdigit():
                raise UsageError(f"STEPS={value!r} is not a number of migrations: write e.g. STEPS=2")
            flags.append(f"{argument}={value.strip()}")
        else:
            flags.append(f"{argument}={value}")
    if "name" in takes and "name" not in positionals:
        raise UsageError(f"NAME is required: make {target} NAME=add_x")
    args = [command, *flags, "--"]
    if "name" in positionals:
        args.append(positionals["name"])
    if fixed:
        args += fixed
    elif "database" in positionals:
        args.append(positionals["database"])
    return args if args[-1] != "--" else args[:-1]  # argparse refuses a bare -- where nothing is positional


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _not_taken(target: str, variable: str, fixed: list[str], accepted: list[str]) -> str:
    if variable == "DB" and fixed:
        scope = "every database" if fixed == ["all"] else fixed[0]
        return f"make {target} acts on {scope}, so it takes no DB: use make db-migrate DB=... instead"
    if variable == "TO" and fixed == ["all"]:
        return (
            f"make {target} migrates to the latest and takes no TO (TO names a migration of one database): "
            "use make db-migrate DB=orion TO=003 instead"
        )
    takes = ", ".join(accepted) or "no variables"
    return f"make {target} does not take {variable} (it takes {takes}): see make help"


# ---- Running ----------------------------------------------------------------------------------


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

            if args.command == "migrate":
                await migrate.migrate(settings, databases, options)
            else:
                await migrate.down(settings, databases[0], options)
        case "create":
            from dbmigrate.commands import create

            await create.create(settings, databases[0], args.name, args.auto, args.transaction != "0")
        case "status":
            from dbmigrate.commands import status

            await status.status(settings, databases, options)
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

            await verify.verify(settings, databases, args.base, args.lint)
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
    args = build_parser().parse_args(argv)
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
    print(f"error: {_scrub(message, settings)}", file=sys.stderr)
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
