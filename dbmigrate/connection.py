"""Connections: from a Database to a live asyncpg connection, with bounded waits and clear errors.

Resolves each database's URL (configured, or the embedded server's), connects with a timeout,
labels the session so lock holders can be named, and turns every connection failure into a
one-line `UserError` that never shows a password.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg

from dbmigrate import embedded
from dbmigrate.config import DATABASES, QUERY_TIMEOUT_SECONDS, Database, Settings
from dbmigrate.errors import UserError
from dbmigrate.urls import database_name, redact, validate, with_database

APPLICATION_NAME_PREFIX = "dbmigrate"


def url_for(settings: Settings, database: Database) -> str:
    """The URL of `database`: the configured one, or the embedded server's (see `prepare`)."""
    configured = settings.url_for(database)
    if configured is not None:
        return validate(configured, database.url_variable)
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
    _, started = embedded.ensure_running(settings.embedded_data_dir)
    if started:
        await create_missing_databases(settings, list(DATABASES.values()))


def server_url(settings: Settings, database: Database) -> str:
    """A URL on the same server as `database` but on the maintenance database `postgres`."""
    return with_database(url_for(settings, database), "postgres")


def application_name(purpose: str) -> str:
    """Shown in pg_stat_activity, so whoever waits on our lock can see who holds it."""
    return f"{APPLICATION_NAME_PREFIX} {purpose} pid={os.getpid()} host={socket.gethostname()}"[:63]


async def connect(settings: Settings, url: str, purpose: str) -> asyncpg.Connection:
    """Open a connection to `url`, or raise a UserError that says what to do."""
    where = _where(url)
    try:
        return await asyncpg.connect(
            url,
            timeout=settings.connect_timeout_seconds,
            server_settings={
                "application_name": application_name(purpose),
                # If this process dies mid-statement, the server notices within a second and
                # rolls back, freeing the migration lock, instead of finishing a long DDL first.
                "client_connection_check_interval": "1000",
                # The framework's own queries are short; migrations set their own timeouts.
                "statement_timeout": f"{QUERY_TIMEOUT_SECONDS:g}s",
            },
        )
    except asyncpg.InvalidCatalogNameError:
        raise UserError(
            f"database {database_name(url)!r} does not exist on {where}: create it with `make db-create`"
        ) from None
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as error:
        raise UserError(
            f"PostgreSQL at {where} refused the login ({first_line(error)}): "
            "check the user and password in the database URL"
        ) from None
    except TimeoutError:
        raise UserError(
            f"no answer from PostgreSQL at {where} within "
            f"{settings.connect_timeout_seconds:g} s: check the host and that the server is up"
        ) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(
            f"cannot reach PostgreSQL at {where} ({reason}): check the host and port in the "
            "database URL and that the server is running"
        ) from None
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
            except asyncpg.DuplicateDatabaseError:
                pass  # another runner created it between our check and our CREATE
    return created


async def drop_databases(settings: Settings, databases: list[Database]) -> list[str]:
    """Drop each of `databases` that exists, ending other sessions on it; return the names dropped."""
    dropped: list[str] = []
    async for conn, dbname, exists in _on_maintenance_database(settings, databases, "drop"):
        if exists:
            await conn.execute(f"DROP DATABASE {quote_identifier(dbname)} WITH (FORCE)")
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


def _where(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair).get(
        "host", "local socket"
    )
    try:
        port = parts.port or 5432
    except ValueError:
        port = "?"
    return redact(f"{host}:{port}/{database_name(url)}")


def first_line(error: BaseException) -> str:
    """The first line of an error's message, without secrets."""
    return redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
