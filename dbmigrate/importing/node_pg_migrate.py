"""node-pg-migrate's SQL migrations: `<number>_<name>.sql` with `-- Up Migration` and
`-- Down Migration` sections (a file without the down section cannot be rolled back). JavaScript
and TypeScript migrations are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.importing.source import (
    NODE_PG_MIGRATE,
    SourceMigration,
    after_marker_line,
    list_files,
    must_run_outside_transaction,
    read_text,
    unrecognised,
)

# https://salsita.github.io/node-pg-migrate/ (SQL migrations, src/sqlMigration.ts)
_NODE_FILE = re.compile(r"^(?P<version>\d+)(?P<sep>[_-]?)(?P<name>.*)\.sql$")
_NODE_SCRIPT = re.compile(r"^\d+.*\.(js|cjs|mjs|ts|cts|mts)$")
_NODE_UP = re.compile(r"^[ \t]*--[ \t-]*up[ \t]+migration[^\n]*$", re.MULTILINE | re.IGNORECASE)
_NODE_DOWN = re.compile(r"^[ \t]*--[ \t-]*down[ \t]+migration[^\n]*$", re.MULTILINE | re.IGNORECASE)


def parse_node_pg_migrate(folder: Path) -> list[SourceMigration]:
    migrations = []
    for path in list_files(folder):
        if _NODE_SCRIPT.match(path.name):
            raise UserError(
                f"{path.name} is a JavaScript/TypeScript migration: only SQL migrations are imported; "
                "rewrite it as SQL (or run `node-pg-migrate --dry-run` and keep its SQL)"
            )
        if not path.name.endswith(".sql"):
            continue
        match = _NODE_FILE.match(path.name)
        if not match:
            raise unrecognised(folder, path, NODE_PG_MIGRATE, "<number>_<name>.sql")
        text = read_text(path)
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
        up = after_marker_line(text, up_start, up_end) if up_marker else text
        down = after_marker_line(text, down_marker.end(), len(text)) if down_marker else None
        migrations.append(
            SourceMigration(
                version=path.name[: -len(".sql")],  # pgmigrations.name: the file name without extension
                name=match.group("name"),
                up=up,
                down=down,
                transactional=not must_run_outside_transaction(up, path.name),
                source=path.name,
                order=(int(match.group("version")), path.name),
            )
        )
    return migrations
