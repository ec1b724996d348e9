"""The duration a migration sent as one query recorded, told back by the server when it commits.

A migration sent as one query (runner.py: BEGIN, its SQL, its bookkeeping, COMMIT) has its duration
measured by the server, in the bookkeeping statement; the runner prints the one recorded. Reading
it back would cost a round trip per migration. Instead the query ends with a NOTIFY on a channel
this connection LISTENs to: PostgreSQL delivers a notification only when its transaction commits,
and to its own session before the query's end, so when the query returns the duration is already
here (asyncio runs the listener first).

Invariant: a duration is taken from a notification of this connection's own backend, for this
app and migration, or not at all; when none came (a server or pooler that holds notifications
back), the caller reads the recorded one (recorder.recorded_duration). Never on a connection in
transaction pooling, which has no session to LISTEN on.
"""

from __future__ import annotations

import weakref

import asyncpg

from dbmigrate.engine.record_statements import sql_literal

CHANNEL = "dbmigrate_recorded"

# Per connection, the durations told and not taken yet, by (app, migration ID).
_told: weakref.WeakKeyDictionary[asyncpg.Connection, dict[tuple[str, str], int]] = weakref.WeakKeyDictionary()


async def listen(conn: asyncpg.Connection) -> None:
    """LISTEN on this connection, once (a round trip the first time only)."""
    if conn in _told:
        return
    told: dict[tuple[str, str], int] = {}
    backend = conn.get_server_pid()

    def heard(_conn, pid: int, _channel: str, payload: str) -> None:
        app, migration_id, duration = payload.split("\n")
        if pid == backend and duration.isdigit():
            told[(app, migration_id)] = int(duration)

    await conn.add_listener(CHANNEL, heard)
    _told[conn] = told


def tell_expression(app: str, migration_id: str) -> str:
    """What tells the recorded duration on commit: an SQL expression of the row's `duration_ms`,
    selected by the bookkeeping statement itself (record_statements.applied_statement)."""
    payload = f"{sql_literal(app)} || E'\\n' || {sql_literal(migration_id)} || E'\\n' || duration_ms"
    return f"pg_notify('{CHANNEL}', {payload})"


def take(conn: asyncpg.Connection, app: str, migration_id: str) -> int | None:
    """The duration told for this migration (once), or None."""
    return _told.get(conn, {}).pop((app, migration_id), None)
