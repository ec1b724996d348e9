"""Reading a folder of another tool's migrations: which format it is (detected when not given), and
its migrations in the tool's own order, each version once.
"""

from __future__ import annotations

from pathlib import Path

from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.importing import dbmate, flyway, golang_migrate, node_pg_migrate
from dbmigrate.importing.source import (
    DBMATE,
    FLYWAY,
    FORMATS,
    GOLANG_MIGRATE,
    NODE_PG_MIGRATE,
    SourceMigration,
    list_files,
    read_text,
)

_PARSERS = {
    DBMATE: dbmate.parse_dbmate,
    GOLANG_MIGRATE: golang_migrate.parse_golang_migrate,
    FLYWAY: flyway.parse_flyway,
    NODE_PG_MIGRATE: node_pg_migrate.parse_node_pg_migrate,
}


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
    for path in list_files(folder, recursive=True):
        name = path.name
        if golang_migrate._GOLANG_FILE.match(name):
            evidence.setdefault(GOLANG_MIGRATE, name)
        elif flyway._FLYWAY_FILE.match(name) or flyway._FLYWAY_REPEATABLE.match(name):
            evidence.setdefault(FLYWAY, name)
        elif name.endswith(".sql"):
            text = read_text(path)
            if dbmate._DBMATE_UP.search(text):
                evidence.setdefault(DBMATE, name)
            elif node_pg_migrate._NODE_UP.search(text):
                evidence.setdefault(NODE_PG_MIGRATE, name)
        elif node_pg_migrate._NODE_SCRIPT.match(name):
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
