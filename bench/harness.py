"""The bench's harness: its server and databases, whole processes timed, and the few dbmigrate
internals it uses in-process (bench/run.py and the row modules share it).

Invariant: every database it creates is named bench_* and is dropped by `Bench.cleanup()`, and a
measurement is a whole process (`run`) or reports why there is none (`side_of`: a timeout, a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import difflib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from verdicts import Side, failed, measured, timed_out

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROJECT_FILES = ["piccolo_conf.py", ".squawk.toml", "schema", "common", "orion", "rfq", "marketdata"]
APPS = ["orion", "rfq", "marketdata"]
URL_VARIABLES = {"orion": "DATABASE_URL", "rfq": "RFQ_DATABASE_URL", "marketdata": "MARKETDATA_DATABASE_URL"}
BOOKKEEPING = {  # each tool's own tables (and their sequences), left out of the schema comparison
    "psql": ["bench_applied"],
    "dbmigrate": ["migration", "migration_id_seq", "dbmigrate_*"],
    "dbmate": ["schema_migrations"],
    "node-pg-migrate": ["pgmigrations", "pgmigrations_id_seq"],
    "Alembic": ["alembic_version"],
}
BENCH_TABLE = "CREATE TABLE bench_instruments (id uuid PRIMARY KEY, symbol text, price numeric, listed_at timestamptz"
BENCH_TABLE += ", attrs jsonb)"
CLI_TIMEOUT = 600.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the few internals the bench uses in-process ------------------------------------------------


def internals():
    """(config, embedded, install) modules: old paths first, then the new layout's."""
    try:
        from dbmigrate import config, embedded
        from dbmigrate import postgres_install as install
    except ImportError:
        from dbmigrate.core import config
        from dbmigrate.server import embedded, install
    return config, embedded, install


def clone_pool_module():
    try:
        from dbmigrate import template_databases as templates
    except ImportError:
        from dbmigrate.testing import templates
    return templates


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, parts.fragment))


# ---- processes ----------------------------------------------------------------------------------


class Failed(RuntimeError):
    pass


class TimedOut(RuntimeError):
    def __init__(self, seconds: float):
        super().__init__(f"timed out after {seconds:g} s")
        self.seconds = seconds


def run(cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT) -> float:
    """Milliseconds the whole process `cmd` took; a failure raises with the end of its stderr."""
    started = time.perf_counter()
    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimedOut(timeout) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or [""]
        raise Failed(f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} exited {result.returncode}: {tail[0][:240]}")
    return elapsed_ms


def side_of(measure: Callable[[], float]) -> Side:
    """A measurement as a Side: its milliseconds, or how it timed out or failed."""
    try:
        return measured(measure())
    except TimedOut as error:
        return timed_out(error.seconds)
    except Exception as error:  # noqa: BLE001 - reported in the row
        return failed(short(error))


def short(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return text[:240]


def median_side(values: list[float | Side]) -> Side:
    """The median of the measured runs; the first failure if any run failed."""
    for value in values:
        if isinstance(value, Side) and not value.measured:
            return value
    numbers = [v.ms if isinstance(v, Side) else v for v in values]
    return measured(statistics.median(numbers)) if numbers else failed("no runs")


# ---- the bench's server and databases -----------------------------------------------------------


@dataclass
class Bench:
    server: str  # URL of the maintenance database
    project: Path  # the checkout whose dbmigrate is measured
    runs: int
    quick: bool
    scratch: Path
    psql_bin: Path
    created: set[str] = field(default_factory=set)
    package: Path | None = None  # where the measured dbmigrate package was copied and byte-compiled

    def install_package(self) -> Path:
        """The measured checkout's dbmigrate package, copied and byte-compiled as `pip install` leaves a
        package (the peers' packages are compiled by their installers), so no run pays for compiling
        dbmigrate itself, and nothing is written into the checkout. Runs put it first on PYTHONPATH."""
        self.package = self.scratch / "site"
        shutil.copytree(
            self.project / "dbmigrate", self.package / "dbmigrate", ignore=shutil.ignore_patterns("__pycache__")
        )
        run(
            [sys.executable, "-m", "compileall", "-q", str(self.package)],
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
        )
        probe = [*self.python, "-c", "import dbmigrate; print(dbmigrate.__file__)"]
        imported = subprocess.run(probe, cwd=self.project, env=self.env(), capture_output=True, text=True).stdout
        if not imported.startswith(str(self.package)):  # else every row would time an uncompiled checkout
            raise Failed(f"runs import dbmigrate from {imported.strip() or '(nothing)'}, not the compiled copy")
        return self.package

    @property
    def psql(self) -> str:
        return str(self.psql_bin / "psql")

    @property
    def pg_dump(self) -> str:
        return str(self.psql_bin / "pg_dump")

    def url(self, dbname: str) -> str:
        return with_database(self.server, dbname)

    def create_db(self, tag: str) -> str:
        name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
        self.created.add(name)
        admin(self.server, f'CREATE DATABASE "{name}"')
        return name

    def drop_db(self, name: str) -> None:
        assert name.startswith("bench_"), name
        admin(self.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.discard(name)

    def cleanup(self) -> None:
        for name in sorted(self.created):
            with contextlib.suppress(Exception):
                self.drop_db(name)

    def settle(self) -> None:
        """CHECKPOINT, so the writes of earlier CREATE/DROP DATABASEs do not land in the next timing."""
        admin(self.server, "CHECKPOINT")

    def timed(self, cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None, timeout=CLI_TIMEOUT) -> float:
        self.settle()
        return run(cmd, cwd, env, timeout)

    @property
    def python(self) -> list[str]:
        """The interpreter dbmigrate's runs use. -P: the current folder (often the checkout, whose
        dbmigrate has no byte code) is not put ahead of PYTHONPATH, so the runs import the compiled
        copy (install_package), as an installed one."""
        return [sys.executable, "-P"]

    def dbmigrate(self, *args: str) -> list[str]:
        return [*self.python, "-m", "dbmigrate", *args]

    def env(self, **urls: str) -> dict[str, str]:
        """A dbmigrate run's environment: the given apps' databases (orion=..., rfq=...), ORION_ENV=test."""
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and not k.startswith("ORION_")}
        env.update({URL_VARIABLES[app]: self.url(name) for app, name in urls.items()})
        # The measured checkout's dbmigrate; no __pycache__ written (migration files compile each run,
        # as Alembic's revision scripts do: both get the same variable).
        env.update(ORION_ENV="test", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(self.package or self.project))
        return env

    def psql_cmd(self, dbname: str, *args: str) -> list[str]:
        return [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(dbname), *args]

    def copy_project(self, name: str, empty: tuple[str, ...] = ()) -> Path:
        """A copy of the project's migration files (`empty` apps with no migrations but __init__.py)."""
        copy = self.scratch / f"project_{name}"
        copy.mkdir()
        for item in PROJECT_FILES:
            source = self.project / item
            if source.is_dir():
                shutil.copytree(source, copy / item, ignore=shutil.ignore_patterns("__pycache__"))
            elif source.exists():
                shutil.copy(source, copy / item)
        for app in empty:
            for path in (copy / app / "piccolo_migrations").iterdir():
                if path.name != "__init__.py":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        return copy

    def import_dbmate(self, project: Path, app: str, folder: Path, timeout: float = CLI_TIMEOUT) -> float:
        return run(
            self.dbmigrate("import", app, "--from", str(folder), "--format", "dbmate"), project, self.env(), timeout
        )

    def schema(self, dbname: str, tool: str) -> str:
        """The public schema as pg_dump prints it, without `tool`'s bookkeeping, plus each table's row count."""
        excluded = [arg for table in BOOKKEEPING[tool] for arg in ("-T", table)]
        cmd = [self.pg_dump, "-d", self.url(dbname), "--schema-only", "-n", "public", "--no-owner", *excluded]
        dump = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        lines = [line for line in dump.splitlines() if not re.match(r"\\(un)?restrict ", line)]  # random keys
        counts = admin(self.url(dbname), ROW_COUNTS, tuple(BOOKKEEPING[tool]))
        return "\n".join(lines) + "\n-- rows: " + counts


ROW_COUNTS = """
SELECT coalesce(string_agg(format('%s=%s', c.relname,
           (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM public.%I', c.relname),
                                                false, true, '')))[1]::text), ' ' ORDER BY c.relname), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND NOT c.relname LIKE ANY (SELECT replace(pattern, '*', '%') FROM unnest($1::text[]) AS pattern)
"""


def admin(url: str, sql: str, *args):
    async def go():
        conn = await asyncpg.connect(url)
        try:
            if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                return await conn.fetchval(sql, *args)
            return await conn.execute(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def schema_mismatch(expected: str, actual: str, tool: str) -> str:
    """'' when equal, else the first differing line."""
    if expected == actual:
        return ""
    for line in difflib.unified_diff(expected.splitlines(), actual.splitlines(), lineterm="", n=0):
        if line[:1] in "+-" and not line.startswith(("+++", "---")):
            return f"{tool}'s schema differs from psql's: {line[:120]}"
    return f"{tool}'s schema differs from psql's"


def write_csv(path: Path, rows: range) -> None:
    """Instruments `rows`, the same every run (ids are UUIDv5 of the row number)."""
    namespace = uuid.UUID("5e681040-bdf9-4c34-bc5b-0209d9207add")
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "symbol", "price", "listed_at", "attrs"])
        for i in rows:
            attrs = f'{{"lot": {1 + i % 100}, "tags": ["bench", "t{i % 7}"], "venue": "X{i % 13:03d}"}}'
            price = f"{(i * 7919) % 100000 / 100:.2f}"
            listed = (epoch + timedelta(minutes=i)).isoformat()
            writer.writerow([uuid.uuid5(namespace, f"bench:{i}"), f"SYM{i:06d}", price, listed, attrs])
