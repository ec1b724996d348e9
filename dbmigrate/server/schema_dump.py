"""Schema snapshots: `pg_dump --schema-only` of a database, normalised so it diffs cleanly.

The snapshot in `schema/<database>.sql` is what a reviewer reads to see a pull request's schema
change (as dbmate's schema.sql and Rails' structure.sql). Normalising drops what varies between
machines and PostgreSQL versions (comment headers, SET lines, `\\restrict` keys, blank runs) and
the framework's own bookkeeping tables.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from dbmigrate.core.errors import UserError
from dbmigrate.core.releases import RELEASES
from dbmigrate.server import install as postgres_install

SCHEMA_FOLDER = "schema"
EXCLUDED_TABLES = ("migration", "migration_id_seq", "dbmigrate_history", "dbmigrate_lock", "dbmigrate_batches")
_DROPPED_LINE = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config|\\restrict|\\unrestrict)")
# PostgreSQL 18 names NOT NULL constraints and pg_dump spells out an inherited one (a partition's
# column): `col type CONSTRAINT parent_col_not_null NOT NULL`. The default name says nothing, and
# older versions print plain `NOT NULL`, so the snapshot compares equal on every major.
_DEFAULT_NOT_NULL_NAME = re.compile(r'^(\s+"?(?P<column>[^\s"]+)"? .*) CONSTRAINT "?(?P<name>[^\s"]+)"? NOT NULL')


def snapshot_path(root: Path, database_name: str) -> Path:
    return root / SCHEMA_FOLDER / f"{database_name}.sql"


def pg_dump_for(server_major: int) -> str:
    """A pg_dump of the server's major version (pg_dump refuses newer servers; older ones differ):
    ORION_PG_BIN's, else the pinned embedded build of that major (installed on first use)."""
    candidates = [Path(p) / "pg_dump" for p in os.environ.get("ORION_PG_BIN", "").split(os.pathsep) if p]
    if server_major in RELEASES:
        candidates.append(postgres_install.ensure_installed(server_major) / "pg_dump")
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    on_path = shutil.which("pg_dump")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.exists() and _major(candidate) == server_major:
            return str(candidate)
    raise UserError(
        f"no pg_dump {server_major} found (it must match the server's version): install "
        f"postgresql-client-{server_major}, or set ORION_PG_BIN to its bin folder"
    )


def dump(url: str, server_major: int) -> str:
    """The normalised schema of the database at `url`."""
    command = [pg_dump_for(server_major), "--schema-only", "--no-owner", "--no-privileges"]
    command += [f"--exclude-table={table}" for table in EXCLUDED_TABLES]
    env = {**os.environ, **libpq_env(url)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if result.returncode != 0:
        raise UserError(f"pg_dump failed: {result.stderr.strip().splitlines()[-1] if result.stderr else 'no output'}")
    return normalise(result.stdout)


def normalise(text: str) -> str:
    lines = [_plain_not_null(line.rstrip()) for line in text.splitlines() if not _DROPPED_LINE.match(line)]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):  # collapse runs of blank lines
            out.append(line)
    return "\n".join(out).strip() + "\n"


def _plain_not_null(line: str) -> str:
    match = _DEFAULT_NOT_NULL_NAME.match(line)
    if match and match["name"].endswith(f"_{match['column']}_not_null"):
        return f"{match[1]} NOT NULL{line[match.end() :]}"
    return line


def unified_diff(expected: str, actual: str, expected_name: str, actual_name: str, limit: int = 80) -> list[str]:
    """The snapshot against the database as a unified diff (at most `limit` lines, then how many
    more); [] when they are equal."""
    lines = list(
        difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), fromfile=expected_name, tofile=actual_name, lineterm=""
        )
    )
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines of diff)"]
    return lines


def _major(pg_dump: Path) -> int | None:
    try:
        out = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


# A URL's query parameters that libpq reads from the environment as well (the rest stay unused).
_LIBPQ_VARIABLES = {
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "options": "PGOPTIONS",
    "service": "PGSERVICE",
}


def libpq_env(url: str) -> dict[str, str]:
    """The URL as libpq environment variables, so the password never appears on a command line
    (a password or user given as `?password=` or `?user=` counts, as it does for asyncpg)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    env = {"PGDATABASE": unquote(parts.path.lstrip("/"))}
    env.update({variable: query[key] for key, variable in _LIBPQ_VARIABLES.items() if query.get(key)})
    host = parts.hostname or query.get("host")
    if host:
        env["PGHOST"] = host
    port = parts.port or query.get("port")
    if port:
        env["PGPORT"] = str(port)
    if parts.username:
        env["PGUSER"] = unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env
