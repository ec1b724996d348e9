"""Configuration: which databases exist, which environment we are in, and where each database lives.

This is the bottom layer: it reads files and environment variables and nothing else (no database,
no Piccolo). `DATABASES` is the one list of databases; every other module, the Makefile's help
and the noxfile derive from it.

Precedence for every setting: real environment variables, then `.env.$ORION_ENV`, then `.env`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.releases import DEFAULT_MAJOR, RELEASES, supported
from dbmigrate.core.text import read_utf8
from dbmigrate.core.urls import as_url, with_database


@dataclass(frozen=True)
class Database:
    """One migrated database: its Piccolo app, the variable naming its URL, and its default name."""

    name: str  # what users type: `make db-migrate DB=rfq`
    url_variable: str  # environment variable holding its URL
    default_dbname: str  # database name on the embedded server / derived URLs

    @property
    def app(self) -> str:
        """The Piccolo app (a top-level folder) holding this database's tables and migrations."""
        return self.name


DATABASES: dict[str, Database] = {
    db.name: db
    for db in (
        Database("orion", "DATABASE_URL", "orion"),
        Database("rfq", "RFQ_DATABASE_URL", "orion_rfq"),
        Database("marketdata", "MARKETDATA_DATABASE_URL", "orion_marketdata"),
    )
}

MIGRATIONS_FOLDER = "piccolo_migrations"  # each app's migrations: <app>/piccolo_migrations/

ENVIRONMENTS = ("development", "test", "ci", "staging", "production")
DEFAULT_ENVIRONMENT = "development"

# Seconds a runner waits for another runner's migration lock before giving up.
DEFAULT_LOCK_WAIT_SECONDS = 60.0
# Seconds to wait for a connection to the server.
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
# Every migration statement runs with these (a migration file may override them): a migration
# stuck behind a busy table fails fast instead of queueing every other query on that table.
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "30min"
DEFAULT_LOCK_RETRIES = 3
MAX_LOCK_RETRIES = 100
_WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")  # ASCII digits: int() reads other scripts' digits too
# The framework's own queries (bookkeeping, status) are short; bound them all the same.
QUERY_TIMEOUT_SECONDS = 60.0

_DURATION = re.compile(r"(?P<number>[0-9]+(\.[0-9]+)?) *(?P<unit>us|ms|s|min|h|d)?")
_MILLISECONDS = {"us": 0.001, "ms": 1, None: 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# lock_timeout and statement_timeout are int milliseconds: PostgreSQL refuses more (about 24.8 days).
MAX_DURATION_MS = 2**31 - 1


def postgres_duration(value: str, key: str) -> str:
    """`value` if PostgreSQL reads it as a duration (e.g. 500ms, 5s, 2min, 0 = no limit)."""
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise UserError(f"{key}={value!r} is not a duration: write e.g. 500ms, 5s, 10min or 0 for no limit")
    if float(match["number"]) * _MILLISECONDS[match["unit"]] > MAX_DURATION_MS:
        raise UserError(
            f"{key}={value!r} is longer than PostgreSQL allows (24 days, {MAX_DURATION_MS} ms): "
            "write a shorter duration, or 0 for no limit"
        )
    return value.strip()


def duration_milliseconds(value: str, key: str) -> float:
    """A duration as PostgreSQL writes it (200ms, 1s, 2min; a bare number is milliseconds), in ms."""
    match = _DURATION.match(value.strip())
    if not match:
        raise UsageError(f"{key}={value!r} is not a duration: write e.g. 200ms, 1s or 2min")
    return float(match["number"]) * _MILLISECONDS[match["unit"]]


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about its surroundings, resolved once per process."""

    project_root: Path
    environment: str
    values: dict[str, str]  # merged .env, .env.$ORION_ENV and the real environment
    # Where each value came from: "the environment", ".env" or ".env.<ORION_ENV>" (for messages).
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key)
        return value if value not in (None, "") else default

    def url_for(self, database: Database) -> str | None:
        """The configured URL of `database`, or None when the embedded server should be used. A
        value in libpq's key=value form (`host=db1 dbname=orion ...`) comes back as the URL it means.

        When no URL variable is set at all, the embedded server serves every database. When only
        DATABASE_URL is set, the other databases live on the same server under their default
        names, as in the story's config.js.
        """
        own = self.get(database.url_variable)
        if own:
            return as_url(own, database.url_variable)
        main = self.get(DATABASES["orion"].url_variable)
        if main:
            return with_database(as_url(main, DATABASES["orion"].url_variable), database.default_dbname)
        if not self.uses_embedded_server:
            configured = ", ".join(db.url_variable for db in DATABASES.values() if self.get(db.url_variable))
            raise UserError(
                f"{database.url_variable} is not set but {configured} is: set {database.url_variable} "
                f"(or DATABASE_URL, which the others default to), or unset them all to use the embedded server"
            )
        return None

    @property
    def uses_embedded_server(self) -> bool:
        return not any(self.get(db.url_variable) for db in DATABASES.values())

    @property
    def lock_wait_seconds(self) -> float:
        return self._seconds("ORION_MIGRATE_LOCK_WAIT", DEFAULT_LOCK_WAIT_SECONDS)

    @property
    def connect_timeout_seconds(self) -> float:
        return self._seconds("ORION_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_SECONDS)

    @property
    def lock_timeout(self) -> str:
        return postgres_duration(self.get("ORION_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT), "ORION_LOCK_TIMEOUT")

    @property
    def statement_timeout(self) -> str:
        return postgres_duration(
            self.get("ORION_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT), "ORION_STATEMENT_TIMEOUT"
        )

    @property
    def lock_retries(self) -> int:
        raw = self.get("ORION_LOCK_RETRIES", str(DEFAULT_LOCK_RETRIES)).strip()
        if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) > MAX_LOCK_RETRIES:
            raise UserError(
                f"ORION_LOCK_RETRIES='{raw}' is not a whole number from 0 to {MAX_LOCK_RETRIES}: set it to e.g. 3"
            )
        return int(raw)

    @property
    def postgres_major(self) -> int:
        """The embedded server's major version: ORION_PG_VERSION, else the newest that passes everything."""
        raw = self.get("ORION_PG_VERSION", str(DEFAULT_MAJOR)).strip()
        if not raw.isdigit() or int(raw) not in RELEASES:
            raise UserError(
                f"ORION_PG_VERSION={raw!r} is not a PostgreSQL major version this project ships: "
                f"choose one of {supported()}"
            )
        return int(raw)

    @property
    def embedded_data_root(self) -> Path:
        return Path(self.get("ORION_PGDATA", str(self.project_root / ".pgdata")))

    @property
    def embedded_data_dir(self) -> Path:
        """One folder per major version (`.pgdata/18`): switching versions never touches another's data."""
        return self.embedded_data_root / str(self.postgres_major)

    def _seconds(self, key: str, default: float) -> float:
        raw = self.get(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{key}={raw!r} is not a number of seconds: set it to e.g. 30")
        return value


def select_databases(name: str | None) -> list[Database]:
    """The databases a command applies to: one by name (any case), a comma-separated list
    (`orion,rfq`), or all when `name` is empty or `all`."""
    if not name or not name.strip() or name.strip().lower() == "all":
        return list(DATABASES.values())
    chosen: list[Database] = []
    for part in name.split(","):
        wanted = part.strip().lower()
        if wanted == "all":
            return list(DATABASES.values())
        if wanted not in DATABASES:
            import difflib  # only for a name that is wrong: every run imports config

            valid = ", ".join(DATABASES)
            close = difflib.get_close_matches(wanted, DATABASES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(
                f"unknown database {part.strip()!r}: {hint}choose one of {valid} (or leave DB unset for all)"
            )
        if DATABASES[wanted] not in chosen:
            chosen.append(DATABASES[wanted])
    return chosen


def find_project_root(start: Path | None = None) -> Path:
    """Where the apps' migrations are: ORION_PROJECT_ROOT's checkout, else the nearest folder at or
    above `start` (default: the current one) holding piccolo_conf.py and the apps (Piccolo's own
    rule; a service's piccolo_conf.py without them is passed over), else where the apps are
    installed (`pip install orion-dbmigrate`: the folder holding the `orion` package)."""
    configured = os.environ.get("ORION_PROJECT_ROOT")
    if configured and start is None:
        found = _checkout_at_or_above(Path(configured).resolve())
        if found is None:
            raise UserError(
                f"ORION_PROJECT_ROOT={configured} is not an Orion migrations project (no piccolo_conf.py beside "
                "the apps' piccolo_migrations/ folders there or above): point it at a checkout of orion-dbmigrate, "
                "or unset it to use the apps installed with the package"
            )
        return found
    here = (start or Path.cwd()).resolve()
    found = _checkout_at_or_above(here) or installed_apps_root()
    if found is None:
        raise UserError(
            f"no Orion migrations project in {here} or above (piccolo_conf.py beside the apps' folders), and the "
            "apps are not installed: run this from the project folder, or `pip install` orion-dbmigrate"
        )
    return found


def _checkout_at_or_above(here: Path) -> Path | None:
    for folder in (here, *here.parents):
        if (folder / "piccolo_conf.py").is_file() and _holds_apps(folder):
            return folder
    return None


def _holds_apps(folder: Path) -> bool:
    return any((folder / database.app / MIGRATIONS_FOLDER).is_dir() for database in DATABASES.values())


def installed_apps_root() -> Path | None:
    """The folder the apps are installed in (site-packages, or this checkout for an editable
    install), found without importing them; None when they are not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(next(iter(DATABASES.values())).app)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        return None
    root = Path(locations[0]).resolve().parent
    return root if all((root / db.app / MIGRATIONS_FOLDER).is_dir() for db in DATABASES.values()) else None


def load_settings(project_root: Path | None = None) -> Settings:
    root = project_root or find_project_root()
    base = _read_env_file(root / ".env")
    environment = os.environ.get("ORION_ENV") or base.get("ORION_ENV") or DEFAULT_ENVIRONMENT
    if environment not in ENVIRONMENTS:
        raise UserError(f"unknown ORION_ENV {environment!r}: choose one of {', '.join(ENVIRONMENTS)}")
    per_environment = _read_env_file(root / f".env.{environment}")
    values = {**base, **per_environment, **os.environ}
    values["ORION_ENV"] = environment
    sources = {key: ".env" for key in base}
    sources.update({key: f".env.{environment}" for key in per_environment})
    sources.update({key: "the environment" for key in os.environ})
    return Settings(project_root=root, environment=environment, values=values, sources=sources)


def _read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file with python-dotenv, turning its parse warnings into an error."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    warnings = io.StringIO()
    handler = logging.StreamHandler(warnings)
    logger = logging.getLogger("dotenv.main")
    logger.addHandler(handler)
    read_utf8(path, path.name)  # python-dotenv reads UTF-8 and would fail on anything else with no line
    try:
        parsed = dotenv_values(path, encoding="utf-8-sig")
    finally:
        logger.removeHandler(handler)
    problem = warnings.getvalue().strip().splitlines()
    if problem:
        # python-dotenv says "could not parse statement starting at line N".
        line = problem[0].rsplit("line", 1)[-1].strip()
        raise UserError(f"{path.name} line {line} does not parse: write it as KEY=value")
    return {key: value for key, value in parsed.items() if value is not None}
