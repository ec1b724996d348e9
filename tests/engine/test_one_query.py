"""A transactional SQL migration goes to the server as one query (BEGIN, its timeouts, its SQL, its
bookkeeping, COMMIT): still all or nothing, still recorded whatever its text ends with or SETs,
with the bookkeeping's values written in as literals that mean the same under any setting."""

from __future__ import annotations

import pytest
from migration_files import write_sql_migration
from support import Databases, migration_ids

from dbmigrate.engine.record_statements import sql_literal
from dbmigrate.testing.helpers import with_connection


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_a_literal_reads_back_as_the_same_text_whatever_standard_conforming_strings_says(dbs: Databases, conforming):
    texts = ["plain", "it's", "back\\slash", "\\'", "''", "tab\there", "ünïcode", ""]

    async def read_back(conn):
        await conn.execute(f"SET standard_conforming_strings = {conforming}")
        return [await conn.fetchval(f"SELECT {sql_literal(text)}") for text in texts]

    assert with_connection(dbs.url("orion"), read_back) == texts


def test_a_migration_whose_text_ends_in_a_line_comment_is_applied_and_recorded(project, dbs: Databases):
    write_sql_migration(
        project, "orion", "905_comment_last", "CREATE TABLE t905 (id int) -- no newline after me", "DROP TABLE t905 --"
    )
    dbs.cli("migrate", "orion")
    assert "t905" in dbs.tables("orion") and dbs.applied("orion")[-1] == "905_comment_last"
    dbs.cli("down", "orion")
    assert "t905" not in dbs.tables("orion") and dbs.applied("orion") == migration_ids("orion")


def test_a_statement_that_fails_midway_leaves_neither_the_schema_change_nor_the_bookkeeping(project, dbs: Databases):
    dbs.cli("migrate", "orion")
    write_sql_migration(
        project,
        "orion",
        "905_half",
        "CREATE TABLE t905 (id int); INSERT INTO t905 VALUES (1); INSERT INTO no_such_table VALUES (1)",
        "DROP TABLE t905",
    )
    failed = dbs.cli("migrate", "orion", expect=1)
    assert "905_half failed and was rolled back" in failed.stderr and "no_such_table" in failed.stderr
    assert "t905" not in dbs.tables("orion") and dbs.applied("orion") == migration_ids("orion")
    history = dbs.sql("orion", "SELECT migration_id FROM dbmigrate_history WHERE migration_id = '905_half'")
    assert history == []
    # the same connection goes on: the next run applies the fixed file
    write_sql_migration(project, "orion", "905_half", "CREATE TABLE t905 (id int)", "DROP TABLE t905")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion")[-1] == "905_half"


def test_a_migration_that_empties_the_search_path_is_recorded_and_the_next_one_runs_in_public(project, dbs: Databases):
    write_sql_migration(  # what pg_dump's output starts with
        project,
        "orion",
        "905_pg_dump",
        "SELECT pg_catalog.set_config('search_path', '', false); CREATE TABLE public.t905 (id int)",
        "DROP TABLE public.t905",
    )
    write_sql_migration(project, "orion", "906_plain", "CREATE TABLE t906 (id int)", "DROP TABLE t906")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion")[-2:] == ["905_pg_dump", "906_plain"]
    assert {"t905", "t906"} <= dbs.tables("orion")
    durations = dbs.sql("orion", "SELECT duration_ms FROM dbmigrate_history WHERE migration_id LIKE '90%'")
    assert all(row["duration_ms"] is not None and row["duration_ms"] >= 0 for row in durations)


def test_the_recorded_duration_is_told_back_on_commit_only_by_our_own_backend_and_never_for_a_rollback(dbs: Databases):
    import asyncpg

    from dbmigrate.engine import bookkeeping, record_statements, told_durations

    async def tell(conn):
        await bookkeeping.ensure_tables(conn)
        await told_durations.listen(conn)
        told = told_durations.tell_expression("orion", "9 it's")
        record = record_statements.applied_statement("orion", "9 it's", "abc", 7.0, None, told)
        await conn.execute(f"BEGIN; {record}; ROLLBACK")
        after_rollback = told_durations.take(conn, "orion", "9 it's")
        # Another session telling the same on our channel is not us.
        other = await asyncpg.connect(dbs.url("orion"))
        await other.execute(f"SELECT pg_notify('{told_durations.CHANNEL}', E'orion\\n9 it''s\\n55')")
        await other.close()
        await conn.execute("SELECT 1")  # the other backend's notification arrives by now
        from_another = told_durations.take(conn, "orion", "9 it's")
        await conn.execute(f"BEGIN; {record}; COMMIT")
        committed = told_durations.take(conn, "orion", "9 it's")
        recorded = await conn.fetchval("SELECT duration_ms FROM dbmigrate_history WHERE migration_id = '9 it''s'")
        return after_rollback, from_another, committed, recorded, told_durations.take(conn, "orion", "9 it's")

    after_rollback, from_another, committed, recorded, again = with_connection(dbs.url("orion"), tell)
    assert (after_rollback, from_another, again) == (None, None, None)
    assert committed == recorded and recorded >= 7
