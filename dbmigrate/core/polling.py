"""Waiting for something another process holds, by polling: the migration lock, the lease, the
reset lock and the template build lock all wait this one way.

Invariant: a waiter never blocks inside the server (a blocked `pg_advisory_lock` sits in a
transaction that the holder's `CREATE INDEX CONCURRENTLY` would wait for: a deadlock); it asks,
sleeps 20 ms to 250 ms outside any transaction, and asks again, until its deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

_POLL_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.25)


async def poll(
    try_once: Callable[[], Awaitable[bool]],
    wait_seconds: float,
    timed_out: Callable[[], Awaitable[Exception]],
    waiting: Callable[[], None] | None = None,
) -> None:
    """Call `try_once` until it returns true, sleeping between tries; after `wait_seconds` raise
    what `timed_out` builds. `waiting` is called once, when a wait has lasted a second."""
    started = time.monotonic()
    attempt = 0
    while not await try_once():
        waited = time.monotonic() - started
        if waited >= wait_seconds:
            raise await timed_out()
        if waiting is not None and waited >= 1:
            waiting()
            waiting = None
        await asyncio.sleep(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)])
        attempt += 1
