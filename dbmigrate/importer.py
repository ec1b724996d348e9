"""Import: another tool's migration history, turned into this framework's migration files.

Like Atlas's `migrate import`, one migration file per source migration, in the source's order,
numbered after the database's existing migrations. The SQL is copied verbatim into sibling
`.up.sql` / `.down.sql` files; the generated `.py` only says which they are (see sql.py).

Four source formats, read without a database:

  * dbmate: `<version>_<name>.sql` with `-- migrate:up` and `-- migrate:down` sections; the
    option `transaction:false` on the up marker makes the migration non-transactional.
  * golang-migrate: `<version>_<name>.up.sql` and `.down.sql` (the down file is optional).
  * Flyway: versioned `V<version>__<name>.sql` (versions like `1`, `1.2`, `1_2`, compared
    numerically part by part) and undo files `U<version>__<name>.sql`; `executeInTransaction=false`
    in a script config file `<script>.conf`, or a `-- flyway:executeInTransaction=false` line in
    the script, makes it non-transactional. Repeatable (`R__`) migrations, callbacks and Flyway
    placeholders (`${name}`) are refused: they have no equivalent here.
  * node-pg-migrate SQL migrations: `<number>_<name>.sql` with `-- Up Migration` and
    `-- Down Migration` sections (a file without the down section cannot be rolled back).
    JavaScript and TypeScript migrations are refused.

golang-migrate, node-pg-migrate and Flyway have no (or no required) marker for "run outside a
transaction", so, as Flyway itself does, a migration whose up SQL holds a statement PostgreSQL
refuses inside a transaction block (`CONCURRENTLY`, `VACUUM`, `CREATE|DROP DATABASE`,
`ALTER SYSTEM`, found outside comments and quoted text) is imported as non-transactional. dbmate
states it explicitly, and only its marker counts.

A missing or empty down makes the imported migration irreversible, unless its up is empty too:
then the down declares that there is nothing to undo, and the migration runs nothing either way
(its `.py` has no SQL step, since migrate refuses a step without a statement). Each generated file records where it came
from (`SOURCE_TOOL`, `SOURCE_VERSION`: the value the tool's own bookkeeping table holds), which
adopt.py matches against a live database.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dbmigrate.config import Database, Settings
from dbmigrate.errors import UsageError, UserError

DBMATE = "dbmate"
GOLANG_MIGRATE = "golang-migrate"
FLYWAY = "flyway"
NODE_PG_MIGRATE = "node-pg-migrate"
FORMATS = (NODE_PG_MIGRATE, DBMATE, GOLANG_MIGRATE, FLYWAY)

PICCOLO_VERSION = "1.38.0"
NOTHING_TO_UNDO = "-- dbmigrate: nothing to undo\n"
MAX_NAME_LENGTH = 60


@dataclass(frozen=True)
class SourceMigration:
    """One migration of the source history."""

    version: str  # what the tool's bookkeeping table records (node-pg-migrate: the file name)
    name: str  # the description part of the file name, as written
    up: str  # verbatim
    down: str | None  # verbatim; None when the source has no down at all
    transactional: bool
    source: str  # the file(s) it came from, for messages and the generated docstring
    order: tuple  # sort key in the tool's own order

    @property
    def up_is_empty(self) -> bool:
        return not has_statements(self.up)

    @property
    def down_is_empty(self) -> bool:
        return self.down is None or not has_statements(self.down)

    @property
    def reversible(self) -> bool:
        return not self.down_is_empty or self.up_is_empty


# --- SQL text: just enough lexing to see past comments, quoted text and dollar-quoted bodies ---

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*)?\$")


def code_only(sql: str) -> str:
    """`sql` with comments, string literals, quoted identifiers and dollar-quoted bodies blanked
    out (replaced by spaces), so what is left is the statements' own keywords and `;`s."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
        elif sql.startswith("/*", i):  # PostgreSQL's block comments nest
            depth, end = 1, i + 2
            while end < n and depth:
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif c in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:  # '' or "" inside
                        end += 2
                        continue
                    end += 1
                    break
                if c == "'" and sql[end] == "\\" and i > 0 and sql[i - 1] in "eE":  # E'...\'...'
                    end += 2
                    continue
                end += 1
        elif c == "$" and (match := _DOLLAR_TAG.match(sql, i)) and not (i > 0 and _is_word(sql[i - 1])):
            close = sql.find(match.group(0), match.end())
            end = n if close < 0 else close + len(match.group(0))
        else:
            out.append(c)
            i += 1
            continue
        out.append(" ")
        i = end
    return "".join(out)


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def has_statements(sql: str) -> bool:
    return bool(code_only(sql).replace(";", " ").strip())


_NEVER_IN_TRANSACTION = re.compile(
    r"\bCONCURRENTLY\b|(^|;)\s*VACUUM\b|(^|;)\s*(CREATE|DROP)\s+DATABASE\b|(^|;)\s*ALTER\s+SYSTEM\b",
    re.IGNORECASE,
)


def must_run_outside_transaction(sql: str) -> bool:
    """True when `sql` holds a statement PostgreSQL refuses inside a transaction block."""
    return bool(_NEVER_IN_TRANSACTION.search(code_only(sql)))


# --- reading a folder ---


def read_history(folder: Path, format: str | None = None) -> tuple[str, list[SourceMigration]]:
    """The format of `folder` (detected when not given) and its migrations in the tool's order."""
    if not folder.exists():
        raise UsageError(f"{folder} does not exist: FROM must be the folder holding the migrations")
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: FROM must be the folder holding the migrations")
    if format is None:
        format = detect_format(folder)
    elif format not in FORMATS:
        raise UsageError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)}")
    migrations = _PARSERS[format](folder)
    if not migrations:
        raise UserError(f"{folder} holds no {format} migrations")
    migrations.sort(key=lambda m: m.order)
    seen: dict[str, SourceMigration] = {}
    for migration in migrations:
        twin = seen.setdefault(migration.version, migration)
        if twin is not migration:
            raise UserError(
                f"{folder}: {twin.source} and {migration.source} have the same {format} version "
                f"{migration.version}; the tool would refuse them too: renumber one"
            )
    return format, migrations


def detect_format(folder: Path) -> str:
    """The one format whose files `folder` holds; a one-line error for none or several."""
    evidence: dict[str, str] = {}
    for path in _files(folder, recursive=True):
        name = path.name
        if _GOLANG_FILE.match(name):
            evidence.setdefault(GOLANG_MIGRATE, name)
        elif _FLYWAY_FILE.match(name) or _FLYWAY_REPEATABLE.match(name):
            evidence.setdefault(FLYWAY, name)
        elif name.endswith(".sql"):
            text = _read(path)
            if _DBMATE_UP.search(text):
                evidence.setdefault(DBMATE, name)
            elif _NODE_UP.search(text):
                evidence.setdefault(NODE_PG_MIGRATE, name)
        elif _NODE_SCRIPT.match(name):
            evidence.setdefault(NODE_PG_MIGRATE, name)
    if not evidence:
        raise UserError(
            f"{folder} holds no migrations of a known format ({', '.join(FORMATS)}): "
            "point FROM at the folder of migration files"
        )
    if len(evidence) > 1:
        seen = ", ".join(f"{fmt} ({example})" for fmt, example in sorted(evidence.items()))
        raise UserError(f"{folder} looks like several formats: {seen}; say which with FORMAT=")
    return next(iter(evidence))


def _files(folder: Path, recursive: bool = False) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _read(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:  # newline="": CRLF stays as written
            return f.read()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: convert it first") from None


def _unrecognised(folder: Path, path: Path, format: str, expected: str) -> UserError:
    return UserError(f"{path.relative_to(folder)} is not a {format} migration (expected {expected}); move it away")


# dbmate: https://github.com/amacneil/dbmate#creating-migrations
_DBMATE_FILE = re.compile(r"^(?P<version>\d+)_?(?P<name>.*)\.sql$")
_DBMATE_UP = re.compile(r"^--\s*migrate:up(?P<options>[ \t][^\n]*)?\r?$", re.MULTILINE)
_DBMATE_DOWN = re.compile(r"^--\s*migrate:down(?P<options>[ \t][^\n]*)?\r?$", re.MULTILINE)
_DBMATE_OPTION = re.compile(r"^(?P<key>[a-z_]+):(?P<value>\S+)$")


def parse_dbmate(folder: Path) -> list[SourceMigration]:
    migrations = []
    for path in _files(folder):
        if not path.name.endswith(".sql"):
            continue
        match = _DBMATE_FILE.match(path.name)
        if not match:
            raise _unrecognised(folder, path, DBMATE, "<version>_<name>.sql")
        text = _read(path)
        ups, downs = list(_DBMATE_UP.finditer(text)), list(_DBMATE_DOWN.finditer(text))
        if len(ups) != 1 or len(downs) > 1:
            problem = "has no `-- migrate:up` line" if not ups else "has more than one up or down section"
            raise UserError(f"{path.name} {problem}: dbmate needs exactly one `-- migrate:up` section")
        up_marker = ups[0]
        down_marker = downs[0] if downs else None
        if down_marker and down_marker.start() < up_marker.start():
            raise UserError(f"{path.name}: `-- migrate:down` comes before `-- migrate:up`; dbmate wants up first")
        if has_statements(text[: up_marker.start()]):
            raise UserError(f"{path.name} has SQL before `-- migrate:up`; dbmate would not run it")
        up_end = down_marker.start() if down_marker else len(text)
        up = _after_marker_line(text, up_marker.end(), up_end)
        down = _after_marker_line(text, down_marker.end(), len(text)) if down_marker else None
        options = _dbmate_options(path, up_marker.group("options"))
        if down_marker and _dbmate_options(path, down_marker.group("options")).get("transaction") == "false":
            options.setdefault("transaction", "false")
        migrations.append(
            SourceMigration(
                version=match.group("version"),
                name=match.group("name"),
                up=up,
                down=down,
                transactional=options.get("transaction", "true") != "false",
                source=path.name,
                order=(int(match.group("version")), path.name),
            )
        )
    return migrations


def _after_marker_line(text: str, marker_end: int, end: int) -> str:
    """The text from the line after a marker (at `marker_end`, the end of its line) up to `end`."""
    start = marker_end + 1 if text.startswith("\n", marker_end) else marker_end
    return text[start:end] if start <= end else ""


def _dbmate_options(path: Path, raw: str | None) -> dict[str, str]:
    options = {}
    for word in (raw or "").split():
        match = _DBMATE_OPTION.match(word)
        if not match or match.group("key") != "transaction" or match.group("value") not in ("true", "false"):
            raise UserError(f"{path.name}: unknown dbmate option {word!r} (only transaction:false is known)")
        options[match.group("key")] = match.group("value")
    return options


# golang-migrate: https://github.com/golang-migrate/migrate/blob/master/MIGRATIONS.md
_GOLANG_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.*)\.(?P<direction>up|down)\.sql$")


def parse_golang_migrate(folder: Path) -> list[SourceMigration]:
    ups: dict[int, tuple[Path, re.Match]] = {}
    downs: dict[int, Path] = {}
    for path in _files(folder):
        if not path.name.endswith(".sql"):
            continue
        match = _GOLANG_FILE.match(path.name)
        if not match:
            raise _unrecognised(folder, path, GOLANG_MIGRATE, "<version>_<name>.up.sql or .down.sql")
        version = int(match.group("version"))
        side = ups if match.group("direction") == "up" else downs
        if version in side:
            twin = side[version][0] if isinstance(side[version], tuple) else side[version]
            raise UserError(
                f"{folder}: {twin.name} and {path.name} have the same golang-migrate version {version}; renumber one"
            )
        side[version] = (path, match) if side is ups else path
    for version, path in downs.items():
        if version not in ups:
            raise UserError(f"{path.name} has no matching .up.sql file: golang-migrate would refuse it too")
    migrations = []
    for version, (path, match) in ups.items():
        up = _read(path)
        down_path = downs.get(version)
        migrations.append(
            SourceMigration(
                version=str(version),
                name=match.group("name"),
                up=up,
                down=_read(down_path) if down_path else None,
                transactional=not must_run_outside_transaction(up),
                source=path.name + (f" + {down_path.name}" if down_path else ""),
                order=(version, path.name),
            )
        )
    return migrations


# Flyway: https://documentation.red-gate.com/fd/migrations-184127470.html
_FLYWAY_FILE = re.compile(r"^(?P<kind>[VU])(?P<version>\d+(?:[._]\d+)*)__(?P<name>.*)\.sql$")
_FLYWAY_REPEATABLE = re.compile(r"^R__.*\.sql$")
_FLYWAY_INLINE_CONFIG = re.compile(r"^--\s*flyway:(?P<key>\w+)\s*=\s*(?P<value>\S+)\s*$", re.MULTILINE)
_FLYWAY_PLACEHOLDER = re.compile(r"\$\{[^}\s]*\}")


def flyway_version_key(version: str) -> tuple[int, ...]:
    """Flyway's version order: dotted (or underscored) parts compared as numbers; trailing zeros
    do not count (1.0 is 1)."""
    parts = [int(part) for part in re.split(r"[._]", version)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_flyway(folder: Path) -> list[SourceMigration]:
    versioned: dict[tuple[int, ...], tuple[Path, re.Match]] = {}
    undo: dict[tuple[int, ...], Path] = {}
    for path in _files(folder, recursive=True):
        name = path.name
        if name.endswith(".sql.conf"):
            if not path.with_name(name[: -len(".conf")]).is_file():
                raise UserError(f"{path.relative_to(folder)} configures a script that does not exist")
            continue
        if not name.endswith(".sql"):
            continue
        if _FLYWAY_REPEATABLE.match(name):
            raise UserError(
                f"{path.relative_to(folder)} is a repeatable Flyway migration, which has no equivalent here: "
                "make it a versioned migration (V...__) first"
            )
        match = _FLYWAY_FILE.match(name)
        if not match:
            raise _unrecognised(folder, path, FLYWAY, "V<version>__<name>.sql or U<version>__<name>.sql")
        key = flyway_version_key(match.group("version"))
        side = versioned if match.group("kind") == "V" else undo
        if key in side:
            twin = side[key][0] if isinstance(side[key], tuple) else side[key]
            raise UserError(
                f"{folder}: {twin.name} and {name} have the same Flyway version {match.group('version')}; "
                "Flyway would refuse them too: renumber one"
            )
        side[key] = (path, match) if side is versioned else path
    for key, path in undo.items():
        if key not in versioned:
            raise UserError(f"{path.relative_to(folder)} undoes a version that has no V file")
    migrations = []
    for key, (path, match) in versioned.items():
        up = _read(path)
        undo_path = undo.get(key)
        down = _read(undo_path) if undo_path else None
        for text, where in ((up, path), (down, undo_path)):
            if text and (placeholder := _FLYWAY_PLACEHOLDER.search(code_only_placeholders(text))):
                raise UserError(
                    f"{where.relative_to(folder)} uses the Flyway placeholder {placeholder.group(0)}, which is "
                    "not replaced here: write its value instead"
                )
        config = _flyway_script_config(path)
        in_transaction = config.get("executeInTransaction", "true").lower() != "false"
        migrations.append(
            SourceMigration(
                version=match.group("version").replace("_", "."),
                name=match.group("name"),
                up=up,
                down=down,
                transactional=in_transaction and not must_run_outside_transaction(up),
                source=str(path.relative_to(folder)) + (f" + {undo_path.relative_to(folder)}" if undo_path else ""),
                order=(key, path.name),
            )
        )
    return migrations


def code_only_placeholders(sql: str) -> str:
    """Flyway replaces placeholders everywhere except in comments; dollar quotes do not protect them."""
    return re.sub(r"--[^\n]*", " ", sql)


def _flyway_script_config(script: Path) -> dict[str, str]:
    config: dict[str, str] = {}
    conf = script.with_name(script.name + ".conf")
    if conf.is_file():
        for line in _read(conf).splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise UserError(f"{conf.name}: cannot read {line!r}: write key=value")
            config[key.strip().removeprefix("flyway.")] = value.strip()
    for match in _FLYWAY_INLINE_CONFIG.finditer(_read(script)):
        config[match.group("key")] = match.group("value")
    unknown = set(config) - {"executeInTransaction", "encoding"}
    if unknown:
        raise UserError(f"{script.name}: unsupported Flyway script setting {sorted(unknown)[0]!r}")
    return config


# node-pg-migrate: https://salsita.github.io/node-pg-migrate/ (SQL migrations, src/sqlMigration.ts)
_NODE_FILE = re.compile(r"^(?P<version>\d+)(?P<sep>[_-]?)(?P<name>.*)\.sql$")
_NODE_SCRIPT = re.compile(r"^\d+.*\.(js|cjs|mjs|ts|cts|mts)$")
_NODE_UP = re.compile(r"^[ \t]*--[ \t-]*up[ \t]+migration[^\n]*$", re.MULTILINE | re.IGNORECASE)
_NODE_DOWN = re.compile(r"^[ \t]*--[ \t-]*down[ \t]+migration[^\n]*$", re.MULTILINE | re.IGNORECASE)


def parse_node_pg_migrate(folder: Path) -> list[SourceMigration]:
    migrations = []
    for path in _files(folder):
        if _NODE_SCRIPT.match(path.name):
            raise UserError(
                f"{path.name} is a JavaScript/TypeScript migration: only SQL migrations are imported; "
                "rewrite it as SQL (or run `node-pg-migrate --dry-run` and keep its SQL)"
            )
        if not path.name.endswith(".sql"):
            continue
        match = _NODE_FILE.match(path.name)
        if not match:
            raise _unrecognised(folder, path, NODE_PG_MIGRATE, "<number>_<name>.sql")
        text = _read(path)
        ups, downs = list(_NODE_UP.finditer(text)), list(_NODE_DOWN.finditer(text))
        if len(ups) > 1 or len(downs) > 1:
            raise UserError(f"{path.name} has more than one `-- Up Migration` or `-- Down Migration` line")
        up_marker, down_marker = (ups or [None])[0], (downs or [None])[0]
        if up_marker and down_marker and down_marker.start() < up_marker.start():
            raise UserError(f"{path.name}: `-- Down Migration` comes before `-- Up Migration`")
        up_start = up_marker.end() if up_marker else 0
        up_end = down_marker.start() if down_marker else len(text)
        if up_marker is None and down_marker is not None:
            raise UserError(f"{path.name} has `-- Down Migration` but no `-- Up Migration` line")
        up = _after_marker_line(text, up_start, up_end) if up_marker else text
        down = _after_marker_line(text, down_marker.end(), len(text)) if down_marker else None
        migrations.append(
            SourceMigration(
                version=path.name[: -len(".sql")],  # pgmigrations.name: the file name without extension
                name=match.group("name"),
                up=up,
                down=down,
                transactional=not must_run_outside_transaction(up),
                source=path.name,
                order=(int(match.group("version")), path.name),
            )
        )
    return migrations


_PARSERS = {
    DBMATE: parse_dbmate,
    GOLANG_MIGRATE: parse_golang_migrate,
    FLYWAY: parse_flyway,
    NODE_PG_MIGRATE: parse_node_pg_migrate,
}


# --- writing our files ---


def migration_name(source_name: str) -> str:
    """A migration name from a source description: lower case [a-z0-9_], at most 60 characters,
    starting with a letter."""
    name = re.sub(r"[^a-z0-9]+", "_", source_name.lower()).strip("_")
    if not name:
        name = "migration"
    elif not name[0].isalpha():
        name = f"m_{name}"
    return name[:MAX_NAME_LENGTH].rstrip("_")


@dataclass(frozen=True)
class PlannedMigration:
    source: SourceMigration
    migration_id: str
    files: dict[Path, str]  # path -> content


_SOURCE_LINE = re.compile(
    r'^SOURCE_TOOL = "(?P<tool>[^"\n]+)"\n'
    r'SOURCE_VERSION = \(?\s*(?P<version>"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')',
    re.MULTILINE,
)


def source_of(migration_file: Path) -> tuple[str, str] | None:
    """(tool, version) of an imported migration file, read as text; None for any other file."""
    match = _SOURCE_LINE.search(migration_file.read_text(encoding="utf-8", errors="replace"))
    return (match.group("tool"), ast.literal_eval(match.group("version"))) if match else None


def plan(
    folder: Path, app: str, existing: list[tuple[str, Path]], tool: str, history: list[SourceMigration]
) -> list[PlannedMigration]:
    """The files to write into `folder` (the app's migrations folder): numbered after the highest
    number among `existing` (ID, path) migrations. Refuses a history imported before, and any
    file that exists already."""
    already = {}
    for _, path in existing:
        source = source_of(path)
        if source and source[0] == tool:
            already[source[1]] = path
    for migration in history:
        if migration.version in already:
            raise UserError(
                f"{tool} migration {migration.source} was imported already ({already[migration.version].name}); "
                "nothing written"
            )
    numbers = [int(m.group(1)) for migration_id, _ in existing if (m := re.match(r"^(\d+)_", migration_id))]
    next_number = max(numbers, default=0) + 1
    width = max(3, len(str(next_number + len(history) - 1)))
    planned = []
    for offset, migration in enumerate(history):
        migration_id = f"{next_number + offset:0{width}d}_{migration_name(migration.name)}"
        stem = folder / f"{app}_{migration_id}"
        files = {stem.with_name(stem.name + ".py"): python_source(app, migration_id, tool, migration)}
        files[stem.with_name(stem.name + ".up.sql")] = migration.up
        if migration.up_is_empty and migration.down_is_empty:
            files[stem.with_name(stem.name + ".down.sql")] = NOTHING_TO_UNDO
        elif not migration.down_is_empty:
            files[stem.with_name(stem.name + ".down.sql")] = migration.down or ""
        planned.append(PlannedMigration(migration, migration_id, files))
    for item in planned:
        for path in item.files:
            if path.exists():
                raise UserError(f"{path.name} exists already: refusing to write over it; nothing written")
    return planned


def write(planned: list[PlannedMigration]) -> None:
    for item in planned:
        for path, content in item.files.items():
            with open(path, "x", encoding="utf-8", newline="") as f:  # "x": never over an existing file
                f.write(content)


def python_source(
    app: str, migration_id: str, tool: str, migration: SourceMigration, squawk_rules: list[str] | None = None
) -> str:
    description = f"Imported from {tool} {migration.source.split(' + ')[0]}"
    docstring = description.replace("\\", "/").replace('"', "'")
    arguments = f'migration_id=ID, app_name="{app}", description=DESCRIPTION'
    if not migration.transactional:
        arguments += ", wrap_in_transaction=False"
    call = f"    manager = SQLMigration({arguments})"
    if len(call) > 120:  # as `ruff format` would write it
        lines = "".join(f"        {argument.strip()},\n" for argument in arguments.split(","))
        call = f"    manager = SQLMigration(\n{lines}    )"
    return (
        f'"""{docstring}"""\n\n'
        "from dbmigrate.sql import SQLMigration\n\n"
        f"{_assign('ID', migration_id)}"
        f"{_assign('VERSION', PICCOLO_VERSION)}"
        f"{_assign('DESCRIPTION', description)}"
        f"{_assign('SOURCE_TOOL', tool)}"
        f"{_assign('SOURCE_VERSION', migration.version)}"
        f"{_squawk_exempt(tool, squawk_rules or [])}\n\n"
        "async def forwards():\n"
        f"{call}\n"
        f"{_NO_STATEMENT if migration.up_is_empty else _SQL_FILES}"
    )


# A source migration whose up holds no statement is a no-op both ways. A migration with SQL steps
# must have a statement to run (migrate refuses an unfilled one), so this one has no steps at all;
# its .up.sql (and .down.sql) stay beside it, verbatim, for the record.
_SQL_FILES = "    return manager.sql_files(__file__)\n"
_NO_STATEMENT = (
    "    # The source migration holds no statement (see the .up.sql beside this file): nothing runs, either way.\n"
    "    return manager\n"
)


def _squawk_exempt(tool: str, rules: list[str]) -> str:
    """SQUAWK_EXEMPT for what squawk finds in SQL that ran already: db-verify's lint is for new SQL."""
    if not rules:
        return ""
    reason = _literal(f"imported from {tool}: applied already, and history is not rewritten")
    return "SQUAWK_EXEMPT = {\n" + "".join(f"    {_literal(rule)}: {reason},\n" for rule in sorted(rules)) + "}\n"


_SQUAWK_FINDING = re.compile(r"^(?P<file>.+?):\d+:\d+: (?:warning|error): (?P<rule>[a-z0-9-]+) ")


def squawk_rules(root: Path, planned: list[PlannedMigration]) -> dict[int, list[str]] | None:
    """The squawk rules each planned migration's up SQL breaks (by index in `planned`), linted as
    db-verify lints it (the project's .squawk.toml; in a transaction when the migration is); None
    when squawk is not installed."""
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(squawk).exists():
        return None
    found: dict[int, set[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for transactional in (True, False):
            paths = {}
            for index, item in enumerate(planned):
                if item.source.transactional == transactional and not item.source.up_is_empty:
                    path = Path(folder) / f"{index}.sql"
                    path.write_text(item.source.up, encoding="utf-8")
                    paths[str(path)] = index
            if not paths:
                continue
            command = [squawk, "--reporter=gcc", *_squawk_config(root), *paths]
            if transactional:
                command.append("--assume-in-transaction")
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            for line in result.stdout.splitlines():
                match = _SQUAWK_FINDING.match(line)
                if match and match.group("file") in paths:
                    found.setdefault(paths[match.group("file")], set()).add(match.group("rule"))
    return {index: sorted(rules) for index, rules in found.items()}


def _squawk_config(root: Path) -> list[str]:
    config = root / ".squawk.toml"
    return [f"--config={config}"] if config.is_file() else []


def _assign(name: str, value: str) -> str:
    """`NAME = "value"` exactly as `ruff format` writes it (so `make lint` passes as generated):
    double quotes unless the value holds more double than single quotes, and in parentheses only
    when that makes a too-long line fit."""
    literal = _literal(value)
    line = f"{name} = {literal}"
    if len(line) <= 120 or len(literal) + 4 > 120:
        return line + "\n"
    return f"{name} = (\n    {literal}\n)\n"


def _literal(value: str) -> str:
    quote = "'" if value.count('"') > value.count("'") else '"'
    escaped = "".join(
        "\\" + c if c in ("\\", quote) else c if c.isprintable() else c.encode("unicode_escape").decode() for c in value
    )
    return f"{quote}{escaped}{quote}"


def import_history(settings: Settings, database: Database, folder: Path, format: str | None) -> list[Path]:
    """`make db-migrate-import`: write `folder`'s history as migrations of `database`, after its
    existing ones. Writes nothing unless every file can be written."""
    from dbmigrate import loader
    from dbmigrate.reporting import say

    tool, history = read_history(folder, format)
    root = settings.project_root
    existing = [(m.id, m.path) for m in loader.discover(root, database)]
    planned = plan(loader.migrations_folder(root, database), database.app, existing, tool, history)
    rules = squawk_rules(root, planned)
    for index, broken in (rules or {}).items():
        item = planned[index]
        py = next(path for path in item.files if path.suffix == ".py")
        item.files[py] = python_source(database.app, item.migration_id, tool, item.source, broken)
    write(planned)
    notes = []
    outside = sum(1 for item in planned if not item.source.transactional)
    irreversible = sum(1 for item in planned if not item.source.reversible)
    if outside:
        notes.append(f"{outside} run outside a transaction")
    if irreversible:
        notes.append(f"{irreversible} cannot be rolled back")
    if rules is None:
        notes.append("squawk is not installed, so db-verify will lint their SQL: run `make venv`, import again")
    elif rules:
        notes.append(f"{len(rules)} exempt what squawk finds in their SQL from db-verify's lint")
    say(
        f"{database.name}: imported {len(planned)} {tool} migration(s) as {planned[0].migration_id} .. "
        f"{planned[-1].migration_id} into {loader.migrations_folder(root, database).relative_to(root)}"
        + (f" ({'; '.join(notes)})" if notes else "")
    )
    return [path for item in planned for path in item.files]
