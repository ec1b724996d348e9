"""Unit tests (no server): what one migration runs under, decided once per migration by the runner
(its own LOCK_TIMEOUT, STATEMENT_TIMEOUT and LOCK_RETRIES, else the configured ones), and the SET
that applies the timeouts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from dbmigrate.core.config import DATABASES
from dbmigrate.engine.migration import MigrationOptions
from dbmigrate.engine.runner import Limits
from dbmigrate.engine.target import Target

CONFIGURED = Target(
    database=DATABASES["rfq"],
    url="postgresql://localhost/orion_rfq",
    project_root=Path("/project"),
    files=(),
    connect_timeout_seconds=5.0,
    lock_wait_seconds=60.0,
    lock_timeout="5s",
    statement_timeout="15min",
    lock_retries=3,
)


def migration(**options) -> SimpleNamespace:
    return SimpleNamespace(options=MigrationOptions(**options))


def test_a_migration_without_its_own_limits_runs_under_the_configured_ones():
    limits = Limits.of(CONFIGURED, migration())
    assert (limits.lock_timeout, limits.statement_timeout, limits.retries) == ("5s", "15min", 3)
    assert limits.in_transaction == "RESET ALL; SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '15min'"
    assert limits.in_session == "RESET ALL; SET lock_timeout = '5s'; SET statement_timeout = '15min'"


def test_a_migrations_own_limits_win_over_the_configured_ones_and_zero_retries_is_kept():
    limits = Limits.of(CONFIGURED, migration(lock_timeout="100ms", statement_timeout="2h", lock_retries=0))
    assert limits.timeouts == ("100ms", "2h")
    assert limits.retries == 0  # LOCK_RETRIES = 0 means none, not "the configured 3"
    assert limits.in_transaction == "RESET ALL; SET LOCAL lock_timeout = '100ms'; SET LOCAL statement_timeout = '2h'"


def test_a_quote_in_a_timeout_cannot_end_the_set_statement():
    limits = Limits.of(CONFIGURED, migration(lock_timeout="1s'; DROP TABLE x; --"))
    assert "lock_timeout = '1s''; DROP TABLE x; --'" in limits.in_session
