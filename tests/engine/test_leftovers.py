"""Unit tests (no server) of what counts as a concurrent build's INVALID leftover, what the
statement reader says each statement builds, and that status fails --check on an INVALID index
(issue 16, class 2)."""

from __future__ import annotations

import pytest

from dbmigrate.commands.status import from_state, text_lines
from dbmigrate.engine.leftovers import IndexBuild, InvalidIndex, left_by
from dbmigrate.engine.state import MigrationState
from dbmigrate.engine.statements import split


def invalid(name: str, table: str = "users") -> InvalidIndex:
    return InvalidIndex("public", name, "public", table, None)


@pytest.mark.parametrize(
    "sql, leftover, not_leftover",
    [
        ("CREATE UNIQUE INDEX CONCURRENTLY idx_a ON users (email)", "idx_a", "idx_a_ccnew"),
        ("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON app.users (email)", "idx_a", "idx_ab"),
        ("REINDEX INDEX CONCURRENTLY idx_a", "idx_a_ccnew", "idx_a"),
        ("REINDEX (CONCURRENTLY) INDEX idx_a", "idx_a_ccold1", "idx_b_ccnew"),
        ("REINDEX TABLE CONCURRENTLY users", "users_email_key_ccnew2", "users_email_key"),
    ],
)
def test_a_leftover_is_only_what_the_statement_itself_builds(sql, leftover, not_leftover):
    (statement,) = split(sql)
    build = statement.index_build
    assert build is not None and IndexBuild.from_record(build.record()) == build
    assert left_by(build, invalid(leftover)) and not left_by(build, invalid(not_leftover))


@pytest.mark.parametrize(
    "sql", ["CREATE INDEX idx_a ON users (email)", "DROP INDEX CONCURRENTLY idx_a", "REINDEX INDEX idx_a"]
)
def test_statements_that_build_nothing_concurrently_leave_nothing_to_drop(sql):
    assert split(sql)[0].index_build is None


def test_an_unnamed_concurrent_index_is_never_taken_for_a_leftover():
    (statement,) = split("CREATE INDEX CONCURRENTLY ON users (email)")
    assert not left_by(statement.index_build, invalid("users_email_idx"))


def test_session_settings_are_the_only_statements_a_resumed_run_repeats():
    settings = split("SET search_path = app; SELECT pg_catalog.set_config('search_path', '', false); RESET ALL")
    others = split("SELECT count(*) FROM users; SELECT set_config('a.b', '1', false) FROM users; UPDATE t SET a = 1")
    assert all(s.session_setting for s in settings) and not any(s.session_setting for s in others)


def test_an_invalid_index_fails_the_check_and_is_named_even_with_nothing_pending():
    state = MigrationState("orion", [], {}, {})
    report = from_state(state, "url", [invalid("idx_a")])
    assert report["ok"] is False and report["counts"]["invalid_indexes"] == 1
    assert "INVALID index public.idx_a on public.users" in "\n".join(text_lines(report))
    being_built = InvalidIndex("public", "idx_b", "public", "users", 4242)
    report = from_state(state, "url", [being_built])
    assert report["ok"] is True and "being built now (pid 4242)" in "\n".join(text_lines(report))
