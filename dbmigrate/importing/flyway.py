"""Flyway's format: versioned `V<version>__<name>.sql` (versions like `1`, `1.2`, `1_2`, compared
numerically part by part) and undo files `U<version>__<name>.sql`; `executeInTransaction=false` in
a script config file `<script>.conf`, or a `-- flyway:executeInTransaction=false` line in the
script, makes it non-transactional, as does a statement PostgreSQL refuses in a transaction.
Repeatable (`R__`) migrations, callbacks and placeholders (`${name}`) are refused: they have no
equivalent here.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.importing.source import (
    FLYWAY,
    SourceMigration,
    list_files,
    must_run_outside_transaction,
    read_text,
    unrecognised,
)

# https://documentation.red-gate.com/fd/migrations-184127470.html
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
    for path in list_files(folder, recursive=True):
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
            raise unrecognised(folder, path, FLYWAY, "V<version>__<name>.sql or U<version>__<name>.sql")
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
        up = read_text(path)
        undo_path = undo.get(key)
        down = read_text(undo_path) if undo_path else None
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
                transactional=in_transaction and not must_run_outside_transaction(up, path.name),
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
        for line in read_text(conf).splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise UserError(f"{conf.name}: cannot read {line!r}: write key=value")
            config[key.strip().removeprefix("flyway.")] = value.strip()
    for match in _FLYWAY_INLINE_CONFIG.finditer(read_text(script)):
        config[match.group("key")] = match.group("value")
    unknown = set(config) - {"executeInTransaction", "encoding"}
    if unknown:
        raise UserError(f"{script.name}: unsupported Flyway script setting {sorted(unknown)[0]!r}")
    return config
