"""The command line's grammar: every command, its database argument and its flags (argparse), with
errors as one line naming `--help`.
"""

from __future__ import annotations

import argparse
import os
import sys

from dbmigrate.core.config import DATABASES
from dbmigrate.core.reporting import complain
from dbmigrate.engine import phases

DEFAULT_DATABASE = "orion"  # the story's db:migrate, :down and :create act on orion
ONE_DATABASE_COMMANDS = (
    "down",
    "create",
    "baseline",
    "import",
    "sql",
    "renumber",
    "rehearse",
    "pause",
    "resume",
    "squash",
)
# Commands whose only job is printing: when the reader of a pipe goes away (`| head`) they end
# quietly, as Unix tools do. Every other command keeps running and keeps recording what it did.
PRINTING_COMMANDS = ("status", "sql")


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, its width found as shutil.get_terminal_size finds it, without
    importing shutil (and the bz2 and lzma it imports): argparse makes a formatter to check every
    argument it is given, so that import is in every run, 1.5 ms of a no-op migrate."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


def _columns() -> int:
    """COLUMNS, else the terminal's width, else 80 (shutil.get_terminal_size's order)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    built: list[str]  # the commands whose parsers were built (build_parser)

    def __init__(self, *args, formatter_class: type[argparse.HelpFormatter] = _Formatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str):  # argparse prints usage and the error: we print one line
        command = "" if self.prog == "dbmigrate" else f" {self.prog.split()[-1]}"
        complain(f"{message} (see `python -m dbmigrate{command} --help`)")
        raise SystemExit(2)


class _NotBuilt:
    """The parser of a command the command line does not name: its arguments are not built."""

    def add_argument(self, *args, **kwargs) -> None:
        pass


def parse(argv: list[str]) -> argparse.Namespace:
    """`argv` parsed. Only the named command's parser is built (all 22 take about 8 ms, a
    twentieth of a no-op migrate); all of them when the line names none, or one that does not exist,
    so `--help` and the error list every command."""
    named = next((word for word in argv if word != "--make"), None)
    if named is not None and not named.startswith("-"):
        parser = build_parser(only=named)
        if named in parser.built:
            return parser.parse_args(argv)
    return build_parser().parse_args(argv)


def build_parser(only: str | None = None) -> _Parser:
    """The whole grammar, or (`only`) the top level and that command's parser alone."""
    names = ", ".join(DATABASES)
    parser = _Parser(prog="dbmigrate", description="Orion's database migrations.")
    parser.built = []
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add_parser(name: str, help: str):
        if only is not None and name != only:
            return _NotBuilt()
        parser.built.append(name)
        return subparsers.add_parser(name, help=help)

    def command(name: str, help: str, database_default: str | None, *flags: str) -> argparse.ArgumentParser:
        p = add_parser(name, help=help)
        if database_default != "none":
            # down, create and baseline act on one database; the others take lists and all too.
            choices = names if name in ONE_DATABASE_COMMANDS else f"{names}, a list (orion,rfq) or all"
            p.add_argument(
                "database", nargs="?", default=database_default, help=f"{choices}; default {database_default or 'all'}"
            )
        for flag in flags:
            p.add_argument(f"--{flag}", **_FLAGS[flag])
        return p

    command("migrate", "apply pending migrations", DEFAULT_DATABASE, "to", "dry-run", "out-of-order", "phase")
    command("down", "roll back the last applied migration", DEFAULT_DATABASE, "steps", "to", "dry-run", "confirm")
    p = add_parser("create", help="write the next numbered migration")
    p.add_argument("name", help="what it does, e.g. add_order_limits")
    p.add_argument("database", nargs="?", default=DEFAULT_DATABASE, help=f"{names}; default orion")
    p.add_argument("--auto", action="store_true", help="fill it from changes to tables.py")
    p.add_argument(
        "--transaction",
        choices=["0", "1"],
        default="1",
        help="0 writes a non-transactional migration (CREATE INDEX CONCURRENTLY), run one statement at a time",
    )
    p.add_argument("--phase", **_FLAGS["phase"])
    p = add_parser("sql", help="print a migration's SQL, with no database (as Django's sqlmigrate)")
    p.add_argument("migration", help="its ID or number, e.g. 003")
    p.add_argument("database", nargs="?", default=DEFAULT_DATABASE, help=f"{names}; default orion")
    p.add_argument("--down", action="store_true", help="the SQL that rolls it back")
    p = add_parser("renumber", help="move a migration that is not applied yet after the last one")
    p.add_argument("migration", help="its whole ID (e.g. 004_add_x), or its number when only one has it")
    p.add_argument("database", nargs="?", default=DEFAULT_DATABASE, help=f"{names}; default orion")
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
        *("targets", "parallel", "to", "dry-run", "out-of-order", "shard", "phase"),
    )
    command("repair", "accept changed or deleted migration files as they are now", None, "confirm")
    command("squash", "write one baseline migration standing for the history up to --to", DEFAULT_DATABASE, "to")
    for name, what in (
        ("pause", "stop a staged migration's batches after the current one"),
        ("resume", "let a paused staged migration go on at the next migrate"),
    ):
        p = add_parser(name, help=what)
        p.add_argument("migration", help="a staged migration's ID or number, e.g. 004")
        p.add_argument("database", nargs="?", default=DEFAULT_DATABASE, help=f"{names}; default orion")
    p = command(
        "baseline", "mark migrations up to --to as applied without running them", DEFAULT_DATABASE, "to", "confirm"
    )
    p.add_argument("--from-tool", metavar="TOOL", help="instead of --to: what this tool's own table says it applied")
    command(
        "verify",
        "prove migrations on a scratch db: up/down/up, lock trace and safety, drift, lint, immutability",
        None,
        *("base", "lint", "format", "summary", "trace"),
    )
    command(
        "rehearse",
        "apply the pending migrations to a filled scratch copy under a workload; fail one that blocks it",
        DEFAULT_DATABASE,
        *("rows", "clients", "max-block", "base", "from-db", "format", "summary", "confirm"),
    )
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
    "to": {"type": lambda text: _migration(text), "metavar": "MIGRATION", "help": "a migration ID or number, e.g. 003"},
    "steps": {"type": int, "metavar": "N", "help": "how many migrations to roll back"},
    "dry-run": {"action": "store_true", "help": "print the SQL that would run; change nothing"},
    "out-of-order": {"action": "store_true", "help": "also apply migrations numbered before applied ones"},
    "confirm": {"metavar": "DATABASE", "help": "with ORION_ENV=production, the database's name"},
    "check": {"action": "store_true", "help": "exit non-zero if anything is pending, modified, missing or failed"},
    "format": {"choices": ["text", "json"], "default": "text"},
    "lint": {"choices": ["all", "new"], "default": "all", "help": "new: lint only migrations not on the base"},
    "base": {"metavar": "REF", "help": "git ref migrations must match (default: merge base with origin/main, or main)"},
    "summary": {"metavar": "FILE", "help": "write a Markdown table of the lock trace (default $GITHUB_STEP_SUMMARY)"},
    "trace": {"choices": ["0", "1"], "default": "1", "help": "0 applies each migration without its lock trace"},
    "rows": {"metavar": "N", "default": "1000000", "help": "rows per table, e.g. 1000000 or 1000000,audit_log=5000000"},
    "clients": {
        "type": lambda text: _whole_number(text, "CLIENTS"),
        "default": 8,
        "metavar": "N",
        "help": "workload connections",
    },
    "max-block": {"metavar": "DURATION", "default": "1s", "help": "fail a migration that blocks the workload longer"},
    "from-db": {
        "metavar": "DATABASE",
        "help": "rehearse on a copy of this database (same server) instead of synthetic rows",
    },
    "targets": {"metavar": "FILE", "help": "a fleet: one `<kind> <url>` per line (kind orion, rfq or marketdata)"},
    "parallel": {"type": lambda text: _whole_number(text, "PARALLEL"), "metavar": "N", "help": "databases at once"},
    "shard": {"metavar": "I/N", "help": "only every N-th target from the I-th: one of N jobs of an orchestrator"},
    "phase": {
        "type": lambda text: _phase(text),
        "metavar": "pre|post",
        "help": "pre: only pre-deploy migrations (post-deploy ones stay pending); post or unset: everything",
    },
}


def _phase(text: str) -> str | None:
    try:
        return phases.check(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _whole_number(text: str, variable: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{variable}={text!r} is not a whole number from 1: write e.g. {variable}=8")
    return int(text)


def _migration(text: str) -> str:
    """TO: a migration ID or number, on one line; a number of at most 18 digits (IDs are numbered
    001, 002, ...; a longer one is a typo, or a value pasted in whole)."""
    if any(c < " " or c == "\x7f" for c in text):
        raise argparse.ArgumentTypeError(
            f"TO='{text}' holds a line break or control character: write a migration ID or number, e.g. TO=003"
        )
    if text.strip().isdigit() and len(text.strip()) > 18:
        raise argparse.ArgumentTypeError(
            f"TO='{text}' is not a migration number ({len(text.strip())} digits): write e.g. TO=003"
        )
    return text
