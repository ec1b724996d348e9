"""Make's variables turned into the command line's arguments: `python -m dbmigrate --make COMMAND`.

Invariant: no value a user types in make ever reaches a shell. Each Make variable (DB, NAME, TO,
...) arrives as an environment variable DBMIGRATE_<NAME> holding its raw text, and becomes an
argument here; a variable the target does not take is refused when typed on make's command line
(and ignored when it only comes from the environment).
"""

from __future__ import annotations

import argparse

from dbmigrate.cli.parser import build_parser
from dbmigrate.core.errors import UsageError

# Every variable the Makefile passes (as DBMIGRATE_<NAME>), and the CLI argument it becomes.
MAKE_VARIABLES = {
    "DB": "database",
    "NAME": "name",
    "ID": "migration",
    "DOWN": "--down",
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
    "SUMMARY": "--summary",
    "TRACE": "--trace",
    "ROWS": "--rows",
    "CLIENTS": "--clients",
    "MAX_BLOCK": "--max-block",
    "FROM_DB": "--from-db",
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
        if argument in ("database", "name", "migration"):
            positionals[argument] = value.strip()
        elif variable in ("AUTO", "CHECK", "DRY_RUN", "OUT_OF_ORDER", "DOWN"):
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
    if "migration" in takes and "migration" not in positionals:
        raise UsageError(f"ID is required: make {target} ID=003 (a migration's number or whole ID)")
    args = [command, *flags, "--"]
    for positional in ("name", "migration"):
        if positional in positionals:
            args.append(positionals[positional])
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
