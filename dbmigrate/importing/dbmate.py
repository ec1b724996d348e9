"""dbmate's format: `<version>_<name>.sql` with `-- migrate:up` and `-- migrate:down` sections; the
option `transaction:false` on a marker makes the migration non-transactional (only the marker
counts, as in dbmate).
"""

from __future__ import annotations

import re
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.importing.source import (
    DBMATE,
    SourceMigration,
    after_marker_line,
    has_statements,
    list_files,
    read_text,
    unrecognised,
)

# https://github.com/amacneil/dbmate#creating-migrations
_DBMATE_FILE = re.compile(r"^(?P<version>\d+)_?(?P<name>.*)\.sql$")
_DBMATE_UP = re.compile(r"^--\s*migrate:up(?P<options>[ \t][^\n]*)?\r?$", re.MULTILINE)
_DBMATE_DOWN = re.compile(r"^--\s*migrate:down(?P<options>[ \t][^\n]*)?\r?$", re.MULTILINE)
_DBMATE_OPTION = re.compile(r"^(?P<key>[a-z_]+):(?P<value>\S+)$")


def parse_dbmate(folder: Path) -> list[SourceMigration]:
    migrations = []
    for path in list_files(folder):
        if not path.name.endswith(".sql"):
            continue
        match = _DBMATE_FILE.match(path.name)
        if not match:
            raise unrecognised(folder, path, DBMATE, "<version>_<name>.sql")
        text = read_text(path)
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
        up = after_marker_line(text, up_marker.end(), up_end)
        down = after_marker_line(text, down_marker.end(), len(text)) if down_marker else None
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


def _dbmate_options(path: Path, raw: str | None) -> dict[str, str]:
    options = {}
    for word in (raw or "").split():
        match = _DBMATE_OPTION.match(word)
        if not match or match.group("key") != "transaction" or match.group("value") not in ("true", "false"):
            raise UserError(f"{path.name}: unknown dbmate option {word!r} (only transaction:false is known)")
        options[match.group("key")] = match.group("value")
    return options
