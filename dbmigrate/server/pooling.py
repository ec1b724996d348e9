"""Connection poolers: connecting through PgBouncer, and knowing when we do.

`ORION_POOLER` says what sits between us and PostgreSQL:

  * `auto` (default): connect as to PostgreSQL; if the server refuses our startup parameters
    (PgBouncer does: "unsupported startup parameter") or turns out to be a pooler, reconnect as
    through a pooler in transaction mode. A pooler is recognised by the backend process ID it
    announces when we connect: PgBouncer hands every client a made-up one, so it differs from the
    `pg_backend_pid()` of the server connection that answers our query. A pooler's mode cannot be
    seen from the client, so a detected one is taken to pool transactions (the safe assumption).
  * `none`: a direct connection, nothing detected (one query less per connection).
  * `transaction` (or `pgbouncer`): a pooler in transaction mode, without detecting it.
  * `session`: a pooler in session mode: each client keeps its server connection, so the
    advisory lock and session settings work, but the pooler refuses our startup parameters.

Through a pooler in transaction mode nothing may outlive a transaction: no session settings (the
framework's `statement_timeout` and `client_connection_check_interval` are not set at all; each
migration sets its own timeouts inside its transaction), no prepared statements kept between
transactions (asyncpg's statement cache is off, so every query goes as an unnamed statement
within one round of the protocol), and no session lock: lock.py takes a lease instead
(engine/lease.py), and non-transactional migrations are refused (engine/preflight.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from dbmigrate.core.config import QUERY_TIMEOUT_SECONDS
from dbmigrate.core.errors import UserError

MODES = ("auto", "none", "session", "transaction")
ALIASES = {"pgbouncer": "transaction", "direct": "none"}
DEFAULT_LEASE_SECONDS = 30.0
MIN_LEASE_SECONDS = 1.0


class Connection(asyncpg.Connection):
    """An asyncpg connection that knows how it reaches the server."""

    # True through a pooler in transaction mode: no session state, the lease lock (lease.py).
    pooled: bool = False
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    # Opens another connection like this one (the lease is renewed on its own connection).
    reopen: Any = None
    lease: Any = None  # the lease this connection holds (lease.Lease), for the fence
    label: str = ""  # its application_name


def mode(settings) -> str:
    """ORION_POOLER, checked: one of MODES."""
    raw = (settings.get("ORION_POOLER") or "auto").strip().lower()
    chosen = ALIASES.get(raw, raw)
    if chosen not in MODES:
        raise UserError(
            f"ORION_POOLER={raw!r} is not understood: write auto (the default: detect PgBouncer), none (a direct "
            "connection), transaction (PgBouncer pool_mode=transaction) or session (pool_mode=session)"
        )
    return chosen


def lease_seconds(settings) -> float:
    """ORION_LOCK_LEASE: seconds a migration lease lasts without renewal (through a pooler)."""
    raw = settings.get("ORION_LOCK_LEASE")
    if raw is None:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_LEASE_SECONDS <= value <= 86_400:
        raise UserError(f"ORION_LOCK_LEASE={raw!r} is not a number of seconds from 1 to 86400: set it to e.g. 30")
    return value


def _options(source) -> tuple[str, float]:
    """(pooler mode, lease seconds) of a Target (resolved) or of Settings (read now)."""
    if hasattr(source, "pooler"):
        return source.pooler, source.lease_seconds
    return mode(source), lease_seconds(source)


async def open_connection(url: str, source, application_name: str) -> Connection:
    """Connect to `url` as `source` (a Target or Settings) says; asyncpg's errors pass through."""
    pooler, lease = _options(source)
    timeout = source.connect_timeout_seconds
    conn: Connection | None = None
    if pooler in ("auto", "none"):
        try:
            conn = await asyncpg.connect(
                url,
                timeout=timeout,
                connection_class=Connection,
                server_settings={
                    "application_name": application_name,
                    # If this process dies mid-statement, the server notices within a second and
                    # rolls back, freeing the migration lock, instead of finishing a long DDL first.
                    "client_connection_check_interval": "1000",
                    # The framework's own queries are short; migrations set their own timeouts.
                    "statement_timeout": f"{QUERY_TIMEOUT_SECONDS:g}s",
                },
            )
        except asyncpg.PostgresError as error:
            if pooler == "none" or "unsupported startup parameter" not in str(error):
                raise
        if conn is not None:
            if pooler == "none" or not await _behind_pooler(conn):
                return _labelled(conn, url, source, application_name, pooled=False, lease=lease)
            await conn.close(timeout=5)  # a pooler that ignored our startup parameters
    session = pooler == "session"
    conn = await asyncpg.connect(
        url,
        timeout=timeout,
        connection_class=Connection,
        statement_cache_size=100 if session else 0,
        server_settings={"application_name": application_name},
    )
    if session:  # the pooler keeps our server connection: session settings are ours
        await conn.execute(
            f"SET client_connection_check_interval = 1000; SET statement_timeout = '{QUERY_TIMEOUT_SECONDS:g}s'"
        )
    return _labelled(conn, url, source, application_name, pooled=not session, lease=lease)


async def _behind_pooler(conn: Connection) -> bool:
    """Whether the backend that answers is not the one announced at connect (PgBouncer's made-up pid)."""
    return await conn.fetchval("SELECT pg_backend_pid()") != conn.get_server_pid()


def _labelled(conn: Connection, url: str, source, application_name: str, pooled: bool, lease: float) -> Connection:
    conn.pooled = pooled
    conn.lease_seconds = lease
    conn.label = application_name

    async def reopen() -> Connection:
        return await open_connection(url, source, f"{application_name} lease"[:63])

    conn.reopen = reopen
    return conn


def is_pooled(conn: Any) -> bool:
    """Whether `conn` goes through a pooler in transaction mode (so holds no session state)."""
    return bool(getattr(conn, "pooled", False))
