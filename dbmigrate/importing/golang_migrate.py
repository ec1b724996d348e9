"""golang-migrate's format: `<version>_<name>.up.sql` and `.down.sql` (the down file is optional). It
has no marker for "run outside a transaction": as Flyway does, a migration whose up SQL holds a
statement PostgreSQL refuses inside a transaction block is imported as non-transactional.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.importing.source import (
    GOLANG_MIGRATE,
    SourceMigration,
    list_files,
    must_run_outside_transaction,
    read_text,
    unrecognised,
)

# https://github.com/golang-migrate/migrate/blob/master/MIGRATIONS.md
_GOLANG_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.*)\.(?P<direction>up|down)\.sql$")


def parse_golang_migrate(folder: Path) -> list[SourceMigration]:
    ups: dict[int, tuple[Path, re.Match]] = {}
    downs: dict[int, Path] = {}
    for path in list_files(folder):
        if not path.name.endswith(".sql"):
            continue
        match = _GOLANG_FILE.match(path.name)
        if not match:
            raise unrecognised(folder, path, GOLANG_MIGRATE, "<version>_<name>.up.sql or .down.sql")
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
        up = read_text(path)
        down_path = downs.get(version)
        migrations.append(
            SourceMigration(
                version=str(version),
                name=match.group("name"),
                up=up,
                down=read_text(down_path) if down_path else None,
                transactional=not must_run_outside_transaction(up, path.name),
                source=path.name + (f" + {down_path.name}" if down_path else ""),
                order=(version, path.name),
            )
        )
    return migrations
