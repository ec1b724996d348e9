"""seed: loads seed data (the story's db:seed), idempotently, under the same lock as migrations.

Layout: `seeds/<kind>/<database>/NNN_<name>.sql|.csv`, run in file-name order, `reference` before
`development`. Which kinds load depends on the environment (`KINDS`): reference data everywhere,
development data only in development and test.

All seed files of one database load in one transaction: a failing file leaves nothing behind.
Every seed file is UTF-8 text; one that is not is refused before it loads, naming its line.
- `.sql` files run as they are and must be idempotent themselves (`ON CONFLICT DO NOTHING`).
- `.csv` files (header row = column names; a byte order mark before it is ignored) load into the
  table `<name>` with COPY, streamed by asyncpg: straight into an empty table, otherwise into a temporary table and then
  `INSERT ... ON CONFLICT DO NOTHING`: rows already there stay as they are, so loading twice
  changes nothing.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from dbmigrate.commands.common import each
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.core.text import check_utf8, read_utf8
from dbmigrate.core.urls import redact
from dbmigrate.engine.lock import migration_lock
from dbmigrate.engine.target import Target
from dbmigrate.server import connection
from dbmigrate.server.connection import quote_identifier

SEEDS_FOLDER = "seeds"
KINDS: dict[str, tuple[str, ...]] = {
    "development": ("reference", "development"),
    "test": ("reference", "development"),
    "ci": ("reference",),
    "staging": ("reference",),
    "production": ("reference",),
}
_PROGRESS_AFTER_SECONDS = 1.0
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class SeedFile:
    kind: str
    path: Path

    @property
    def table(self) -> str:
        """The table a CSV file loads: its name without the NNN_ prefix."""
        stem = self.path.stem
        return stem.split("_", 1)[1] if "_" in stem and stem.split("_", 1)[0].isdigit() else stem

    def label(self, root: Path) -> str:
        return str(self.path.relative_to(root))


def discover(settings: Settings, database: Database) -> list[SeedFile]:
    root = settings.project_root / SEEDS_FOLDER
    files: list[SeedFile] = []
    for kind in KINDS[settings.environment]:
        folder = root / kind / database.name
        if folder.is_dir():
            files += [
                SeedFile(kind, p) for p in sorted(folder.iterdir()) if p.suffix in (".sql", ".csv") and p.is_file()
            ]
    return files


async def seed_database(settings: Settings, database: Database, conn: asyncpg.Connection) -> int:
    """Load every seed file of `database` for this environment; return the number of rows added."""
    files = discover(settings, database)
    if not files:
        say(f"{database.name}: no seed files for ORION_ENV={settings.environment}")
        return 0
    added = 0
    async with migration_lock(conn, database.name, settings.lock_wait_seconds), conn.transaction():
        for seed_file in files:
            label = seed_file.label(settings.project_root)
            started = time.perf_counter()
            try:
                if seed_file.path.suffix == ".csv":
                    rows = await _load_csv(conn, database, seed_file, label)
                else:
                    rows = await _run_sql(conn, seed_file, label)
            except asyncpg.UndefinedTableError as error:
                raise UserError(
                    f"{database.name}: seed {label} needs a table that does not exist ({error}); "
                    f"migrate first: make db-migrate DB={database.name}"
                ) from None
            except asyncpg.PostgresError as error:
                raise UserError(
                    f"{database.name}: seed {label} failed, nothing was loaded: "
                    f"{type(error).__name__}: {redact(str(error).splitlines()[0])}"
                ) from None
            added += rows
            elapsed_ms = (time.perf_counter() - started) * 1000
            say(f"{database.name}: seeded {label} (+{rows} rows, {elapsed_ms:.0f} ms)")
    return added


async def seed(settings: Settings, databases: list[Database]) -> None:
    """Load the seed data this environment gets (reference everywhere; development data in dev and test)."""
    await connection.prepare(settings, databases)

    async def seed_one(database: Database) -> None:
        async with Target.resolve(settings, database).connected("seed") as conn:
            await seed_database(settings, database, conn)

    await each(databases, seed_one)


async def _run_sql(conn: asyncpg.Connection, seed_file: SeedFile, label: str) -> int:
    # A script returns only its last statement's status: count inserts from this transaction's stats.
    inserted = "SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_xact_user_tables"
    before = await conn.fetchval(inserted)
    await conn.execute(read_utf8(seed_file.path, label))
    return await conn.fetchval(inserted) - before


async def _load_csv(conn: asyncpg.Connection, database: Database, seed_file: SeedFile, label: str) -> int:
    table = seed_file.table
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"):
        raise UserError(
            f"{database.name}: seed {label} loads table {table!r}, which does not exist; "
            f"migrate first: make db-migrate DB={database.name}"
        )
    check_utf8(seed_file.path, label)  # COPY would stop at the first byte that is not, naming no line
    with seed_file.path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is not a column
        header = next(csv.reader(handle), None)
    if not header:
        raise UserError(f"{label} is empty: it needs a header row of column names")
    target = f"public.{quote_identifier(table)}"
    if await conn.fetchval(f"SELECT NOT EXISTS (SELECT 1 FROM {target})"):
        # An empty table (a fresh database) cannot conflict: COPY straight in, as fast as \copy.
        # (A file repeating a key then fails loudly instead of being skipped: a bug in the file.)
        status = await conn.copy_to_table(
            table,
            schema_name="public",
            source=_chunks(seed_file.path, label),
            columns=header,
            format="csv",
            header=True,
        )
        return int(status.split()[-1])
    columns = ", ".join(quote_identifier(c) for c in header)
    stage = quote_identifier(f"seed_{table}")
    await conn.execute(f"CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
    await conn.copy_to_table(
        f"seed_{table}", source=_chunks(seed_file.path, label), columns=header, format="csv", header=True
    )
    status = await conn.execute(
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING"
    )
    await conn.execute(f"DROP TABLE {stage}")
    return int(status.split()[-1])


async def _chunks(path: Path, label: str) -> AsyncIterator[bytes]:
    """The file in 1 MiB pieces, with a progress line on stderr once loading takes over a second."""
    total = path.stat().st_size
    sent = 0
    started = time.perf_counter()
    shown = False
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            sent += len(chunk)
            yield chunk
            if time.perf_counter() - started > _PROGRESS_AFTER_SECONDS:
                shown = True
                print(f"\r  {label}: {_bar(sent / total)} {sent / total:4.0%}", end="", file=sys.stderr, flush=True)
    if shown:
        print(file=sys.stderr)


def _bar(fraction: float, width: int = 30) -> str:
    filled = round(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"
