"""Connections: from a Database to a live asyncpg connection, with bounded waits and clear errors.

Resolves each database's URL (configured, or the embedded server's), connects with a timeout,
labels the session so lock holders can be named, and turns every connection failure into a
one-line `UserError` that never shows a password.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from dbmigrate.core.config import DATABASES, Database, Settings
from dbmigrate.core.errors import UserError
from dbmigrate.core.urls import database_name, redact, validate, with_database
from dbmigrate.server import pooling, resets

APPLICATION_NAME_PREFIX = "dbmigrate"

# Where each server's URL came from, for connection errors: (what, origin), e.g.
# ("DATABASE_URL from .env", ".env"). Keyed by the URL without its database, filled by url_for,
# which every command calls before connecting.
_url_sources: dict[str, tuple[str, str]] = {}


def url_for(settings: Settings, database: Database) -> str:
    """The URL of `database`: the configured one, or the embedded server's (see `prepare`)."""
    configured = settings.url_for(database)
    if configured is not None:
        url = validate(configured, database.url_variable)
        _url_sources[_server_key(url)] = url_source(settings, database)
        return url
    from dbmigrate.server import embedded  # only without a configured URL: start-up time

    server = embedded.find_running(settings.embedded_data_dir)
    if server is None:
        raise UserError("the embedded PostgreSQL server is not running: run `make db-migrate`")
    return server.url(database.default_dbname)


async def prepare(settings: Settings, databases: list[Database] | None = None) -> None:
    """Call once per command, before `url_for`: validates the URLs of `databases` (default all),
    or readies the embedded server.

    A freshly started embedded server gets the three databases at once, so a fresh clone needs no
    separate create step.
    """
    if not settings.uses_embedded_server:
        for database in databases or DATABASES.values():
            url_for(settings, database)
        return
    from dbmigrate.server import embedded  # see url_for

    _check_data_folder(settings)
    try:
        if embedded.find_running(settings.embedded_data_dir) is None:
            first = not (settings.embedded_data_dir / "PG_VERSION").exists()
            print(
                f"{'initialising and starting' if first else 'starting'} the embedded PostgreSQL server in "
                f"{_shown_path(settings)} (no database URL is configured); it keeps running after this command: "
                "make db-stop stops it",
                file=sys.stderr,
                flush=True,
            )
        _, started = embedded.ensure_running(settings.embedded_data_dir)
    except OSError as error:  # a folder that cannot be made, read or written
        reason = error.strerror or type(error).__name__
        root = str(settings.embedded_data_root)
        if error.filename and not str(error.filename).startswith(root):
            raise UserError(f"the embedded PostgreSQL server cannot start: {error.filename}: {reason}") from None
        raise _unusable_data_folder(settings, reason, error.filename) from None
    if started:
        await create_missing_databases(settings, list(DATABASES.values()))


def _check_data_folder(settings: Settings) -> None:
    """The embedded server's data folder, or what holds it, must be (or become) a folder."""
    for path in (settings.embedded_data_root, settings.embedded_data_dir):
        if path.exists() and not path.is_dir():
            raise _unusable_data_folder(settings, "it is a file, not a folder", path)


def _unusable_data_folder(settings: Settings, reason: str, path) -> UserError:
    where = settings.embedded_data_root
    setting = (
        f"ORION_PGDATA={where} (from {settings.sources.get('ORION_PGDATA', 'the environment')})"
        if settings.get("ORION_PGDATA")
        else f"{where} (the default, .pgdata in the project)"
    )
    return UserError(
        f"the embedded PostgreSQL server cannot keep its data in {setting}: {path or where}: {reason}; "
        "point ORION_PGDATA at a folder you can write, or set DATABASE_URL to use another server"
    )


def url_source(settings: Settings, database: Database) -> tuple[str, str]:
    """Where the URL of `database` comes from: in words ("DATABASE_URL from .env"), and the origin
    alone (".env", ".env.development" or "the environment")."""
    variable = database.url_variable
    if settings.get(variable):
        origin = settings.sources.get(variable, "the environment")
        return f"{variable} from {origin}", origin
    main = DATABASES["orion"].url_variable
    origin = settings.sources.get(main, "the environment")
    return f"{variable} is unset, so {main}'s server is used ({main} from {origin})", origin


def _advice_for_unreachable(source: tuple[str, str] | None) -> str:
    if source is None:
        return "check the host and port in the database URL and that the server is running"
    what, origin = source
    if origin.startswith(".env"):
        return (
            f"{what}: start that server (`docker compose up -d` starts the project's), or remove the "
            f"database URLs from {origin} to use the embedded server"
        )
    return f"{what}: check its host and port, and that the server is running (`docker compose up -d` starts ours)"


def _server_key(url: str) -> str:
    return with_database(url, "")


def _shown_path(settings: Settings) -> str:
    try:
        return str(settings.embedded_data_dir.relative_to(settings.project_root))
    except ValueError:
        return str(settings.embedded_data_dir)


def server_url(settings: Settings, database: Database) -> str:
    """A URL on the same server as `database` but on the maintenance database `postgres`."""
    return with_database(url_for(settings, database), "postgres")


def application_name(purpose: str) -> str:
    """Shown in pg_stat_activity, so whoever waits on our lock can see who holds it."""
    return f"{APPLICATION_NAME_PREFIX} {purpose} pid={os.getpid()} host={socket.gethostname()}"[:63]


async def connect(settings: Settings, url: str, purpose: str) -> asyncpg.Connection:
    """Open a connection to `url`, or raise a UserError that says what to do."""
    where = _where(url)
    source = _url_sources.get(_server_key(url))
    try:
        # Directly, or through PgBouncer (ORION_POOLER): see pooling.py.
        try:
            return await pooling.open_connection(url, settings, application_name(purpose))
        except asyncpg.InvalidCatalogNameError:
            # Dropped by a reset under way? Then wait for the reset, and connect to what it made.
            if not await resets.wait_for_reset(settings, url):
                raise
            return await pooling.open_connection(url, settings, application_name(purpose))
    except asyncpg.InvalidCatalogNameError:
        raise UserError(
            f"database {database_name(url)!r} does not exist on {where}: create it with `make db-create`"
        ) from None
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as error:
        raise UserError(
            f"PostgreSQL at {where} refused the login ({first_line(error)}): "
            f"check the user and password in {source[0] if source else 'the database URL'}"
        ) from None
    except TimeoutError:
        raise UserError(
            f"no answer from PostgreSQL at {where} within "
            f"{settings.connect_timeout_seconds:g} s: check the host and that the server is up"
        ) from None
    except ValueError as error:  # asyncpg's ClientConfigurationError, or a query value it cannot read
        raise UserError(
            f"the URL of database {database_name(url)!r}{f' ({source[0]})' if source else ''} has a setting the "
            f"client refuses ({first_line(error)}): fix it in the URL, e.g. sslmode=disable, prefer, require, "
            "verify-ca or verify-full"
        ) from None
    except OSError as error:
        unreadable = error.filename or _missing_ssl_file(url)
        if unreadable:  # an sslrootcert/sslcert/sslkey file named in the URL
            raise UserError(
                f"the URL of database {database_name(url)!r} names {unreadable}, which cannot be read "
                f"({error.strerror or first_line(error)}): fix the path in the URL"
            ) from None
        reason = error.strerror or first_line(error)
        raise UserError(f"cannot reach PostgreSQL at {where} ({reason}): {_advice_for_unreachable(source)}") from None
    except asyncpg.PostgresError as error:
        raise UserError(f"PostgreSQL at {where} refused the connection: {first_line(error)}") from None


async def create_missing_databases(settings: Settings, databases: list[Database]) -> list[str]:
    """Create each of `databases` that does not exist yet; return the names created."""
    created: list[str] = []
    async for conn, dbname, exists in _on_maintenance_database(settings, databases, "create"):
        if not exists:
            try:
                await conn.execute(f"CREATE DATABASE {quote_identifier(dbname)}")
                created.append(dbname)
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                # Another runner created it between our check and our CREATE (two concurrent
                # CREATE DATABASE of one name can also collide on pg_database's unique index).
                pass
    return created


async def drop_databases(settings: Settings, databases: list[Database]) -> list[str]:
    """Drop each of `databases` that exists, ending other sessions on it; return the names dropped."""
    dropped: list[str] = []
    async for conn, dbname, exists in _on_maintenance_database(settings, databases, "drop"):
        if exists:
            # IF EXISTS: another runner may have dropped it since we looked.
            await conn.execute(f"DROP DATABASE IF EXISTS {quote_identifier(dbname)} WITH (FORCE)")
            dropped.append(dbname)
    return dropped


async def _on_maintenance_database(
    settings: Settings, databases: list[Database], purpose: str
) -> AsyncIterator[tuple[asyncpg.Connection, str, bool]]:
    """For each database: a connection to its server's `postgres` database, its name, whether it exists."""
    for database in databases:
        url = url_for(settings, database)
        dbname = database_name(url)
        conn = await connect(settings, with_database(url, "postgres"), purpose)
        try:
            exists = bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname))
            yield conn, dbname, exists
        finally:
            await conn.close()


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _missing_ssl_file(url: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query):
        if key in ("sslrootcert", "sslcert", "sslkey", "sslcrl") and value and not os.path.exists(value):
            return value
    return None


def _where(url: str) -> str:
    """host:port/database as libpq reads the URL: ?host= and ?port= count when the URL has none."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host", "local socket")
    try:
        port = parts.port or query.get("port") or 5432
    except ValueError:
        port = "?"
    return redact(f"{host}:{port}/{database_name(url)}")


def first_line(error: BaseException) -> str:
    """The first line of an error's message, without secrets."""
    return redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
