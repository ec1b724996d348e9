"""An application's workload beside a migration: short primary-key reads and writes, each timed,
each under lock_timeout = 100ms, so a query that waits longer than that for a lock fails (and is
counted) instead of just being slow: "blocked for more than 100 ms" is measured by PostgreSQL,
not by a busy machine's clock. Runs in a thread of its own while the test drives the CLI."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

LOCK_TIMEOUT = "100ms"


@dataclass
class Client:
    """One connection's state: its random numbers, the rows it owns, what it wrote last to each."""

    index: int
    rng: random.Random
    rows: list = field(default_factory=list)
    expected: dict = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


Query = Callable[[asyncpg.Connection, Client], Awaitable[object]]


@dataclass
class Result:
    queries: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # queries that waited past lock_timeout
    errors: list[str] = field(default_factory=list)  # any other failure

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=0.0)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(len(ordered) * share), len(ordered) - 1)] if ordered else 0.0

    def summary(self) -> str:
        return (
            f"{self.queries} queries, p50 {self.percentile(0.5):.1f} ms, p99 {self.percentile(0.99):.1f} ms, "
            f"max {self.max_ms:.1f} ms, {len(self.blocked)} blocked past {LOCK_TIMEOUT}, {len(self.errors)} errors"
        )


class Workload:
    """`clients` connections to `url`, each running one of `queries` (picked at random) in a loop,
    each query in its own transaction under lock_timeout, until stop()."""

    def __init__(
        self, url: str, queries: list[Query], clients: int = 4, pause: float = 0.002, rows: list | None = None
    ) -> None:
        self.url, self.queries, self.pause = url, queries, pause
        shares = [list((rows or [])[n::clients]) for n in range(clients)]  # each client owns its rows
        self.clients = [Client(n, random.Random(n), shares[n]) for n in range(clients)]
        self.result = Result()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> Workload:
        self._thread.start()
        assert self._ready.wait(30), "the workload did not connect"
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> Result:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.result

    async def _run(self) -> None:
        conns = [await asyncpg.connect(self.url, statement_cache_size=0) for _ in self.clients]
        self._ready.set()
        try:
            await asyncio.gather(
                *(self._client(conn, client) for conn, client in zip(conns, self.clients, strict=True))
            )
        finally:
            for conn in conns:
                await conn.close()

    @property
    def expected(self) -> dict:
        """Every row's last value written by this workload (its clients own disjoint rows)."""
        return {row: value for client in self.clients for row, value in client.expected.items()}

    @property
    def mismatches(self) -> list[str]:
        return [m for client in self.clients for m in client.mismatches]

    async def _client(self, conn: asyncpg.Connection, client: Client) -> None:
        while not self._stop.is_set():
            query = client.rng.choice(self.queries)
            started = time.perf_counter()
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    await query(conn, client)
            except asyncpg.LockNotAvailableError as error:
                self.result.blocked.append(str(error))
            except Exception as error:  # noqa: BLE001 - every failure is counted and shown
                self.result.errors.append(f"{type(error).__name__}: {error}")
            else:
                self.result.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.result.queries += 1
            await asyncio.sleep(self.pause)
