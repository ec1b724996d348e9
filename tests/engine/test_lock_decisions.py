"""Unit tests (no server): what the migration lock and the lease decide, read from the statements
they send (parsed by PostgreSQL's own parser, so a rewrite that changes a decision fails here):
waiters poll instead of blocking, a claim skips a row another transaction holds, only the owner
renews or releases, and the fence locks the row against claims for the length of a migration."""

from __future__ import annotations

import asyncio

from pglast import ast, parse_sql

from dbmigrate.core import polling
from dbmigrate.engine import lease


def _statement(sql: str):
    (raw,) = parse_sql(sql)
    return raw.stmt


def _locking(select: ast.SelectStmt) -> list[tuple[str, str]]:
    return [(clause.strength.name, clause.waitPolicy.name) for clause in select.lockingClause or ()]


def test_a_claim_takes_only_a_free_or_lapsed_row_and_skips_one_another_transaction_holds():
    update = _statement(lease._CLAIM)
    assert isinstance(update, ast.UpdateStmt)
    (free,) = update.withClause.ctes
    select = free.ctequery
    assert _locking(select) == [("LCS_FORUPDATE", "LockWaitSkip")]  # FOR UPDATE SKIP LOCKED: never waits
    condition = lease._CLAIM.split("WHERE", 2)[1]
    assert "owner IS NULL OR expires_at <= clock_timestamp()" in condition


def test_the_fence_locks_our_own_row_for_key_share_so_no_claim_can_take_it_meanwhile():
    select = _statement(lease._FENCE)
    assert _locking(select) == [("LCS_FORKEYSHARE", "LockWaitBlock")]
    assert "owner = $2" in lease._FENCE  # only while we are still the owner


def test_only_the_owner_renews_or_releases():
    for sql in (lease._RENEW, lease._RELEASE):
        update = _statement(sql)
        assert isinstance(update, ast.UpdateStmt)
        assert "owner = $2" in sql.split("WHERE", 1)[1]


def test_a_waiter_polls_with_growing_sleeps_and_gives_up_at_its_deadline(monkeypatch):
    sleeps: list[float] = []
    clock = [0.0]

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(polling.asyncio, "sleep", fake_sleep)
    monkeypatch.setattr(polling.time, "monotonic", lambda: clock[0])
    tries = []

    async def never() -> bool:
        tries.append(clock[0])
        return False

    async def timed_out() -> Exception:
        return TimeoutError(f"gave up after {clock[0]:.2f} s")

    waited = []
    try:
        asyncio.run(polling.poll(never, 1.5, timed_out, lambda: waited.append(clock[0])))
    except TimeoutError as error:
        gave_up_at = float(str(error).split()[-2])
    assert sleeps[:5] == [0.02, 0.05, 0.1, 0.2, 0.25] and set(sleeps[5:]) == {0.25}
    assert 1.5 <= gave_up_at < 1.5 + 0.25  # at the deadline: not before, and within one poll after
    assert len(waited) == 1 and waited[0] >= 1  # told once, after a second


def test_a_waiter_that_gets_the_lock_stops_polling_at_once(monkeypatch):
    answers = iter([False, False, True])

    async def no_sleep(seconds: float) -> None:
        pass

    monkeypatch.setattr(polling.asyncio, "sleep", no_sleep)

    async def try_once() -> bool:
        return next(answers)

    async def timed_out() -> Exception:
        raise AssertionError("gave up although the lock came free")

    asyncio.run(polling.poll(try_once, 60, timed_out))
    assert next(answers, "drained") == "drained"
