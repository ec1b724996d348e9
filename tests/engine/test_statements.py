"""Unit tests (no server): SQL split by PostgreSQL's parser, and what may not run in a transaction."""

from __future__ import annotations

import pytest
from support import fresh_python

from dbmigrate.engine.statements import SQLSyntaxError, is_empty, split


def test_dollar_quoted_bodies_do_blocks_and_begin_atomic_stay_whole():
    sql = """-- header comment
CREATE FUNCTION f() RETURNS int AS $$ BEGIN PERFORM 1; RETURN 2; END; $$ LANGUAGE plpgsql;
DO $body$ BEGIN RAISE NOTICE 'a;b'; END $body$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;
/* block ; comment */ INSERT INTO t VALUES (';');
"""
    statements = split(sql)
    assert [s.line for s in statements] == [2, 3, 4, 5]
    assert statements[0].sql.startswith("CREATE FUNCTION f()") and statements[0].sql.endswith("plpgsql")
    assert statements[1].sql == "DO $body$ BEGIN RAISE NOTICE 'a;b'; END $body$"
    assert "SELECT 2; END" in statements[2].sql
    assert statements[3].sql == "INSERT INTO t VALUES (';')"


def test_lines_count_from_the_first_line_given_and_through_non_ascii_text():
    statements = split("-- é ü\nCREATE TABLE é (x int);\n\nSELECT 'ß';", first_line=10)
    assert [s.line for s in statements] == [11, 13]


def test_a_last_statement_without_semicolon_is_kept():
    assert [s.sql for s in split("SELECT 1;\nSELECT 2")] == ["SELECT 1", "SELECT 2"]


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (x)", "CREATE INDEX CONCURRENTLY"),
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("VACUUM ANALYZE t", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        ("CREATE DATABASE x", "CREATE DATABASE"),
        ("DROP DATABASE x", "DROP DATABASE"),
    ],
)
def test_statements_that_cannot_run_in_a_transaction_are_named(sql: str, kind: str):
    (statement,) = split(sql)
    assert statement.outside_transaction == kind


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX i ON t (x)",
        "ANALYZE t",
        "REINDEX INDEX i",
        "ALTER TYPE mood ADD VALUE 'meh'",
        "DROP INDEX i",
        'CREATE TABLE "concurrently" (x int)',
    ],
)
def test_ordinary_statements_may_run_in_a_transaction(sql: str):
    (statement,) = split(sql)
    assert statement.outside_transaction is None and not statement.transaction_control


def test_transaction_control_is_recognised():
    assert [s.transaction_control for s in split("BEGIN; SELECT 1; COMMIT;")] == [True, False, True]


def test_only_comments_is_empty_and_a_statement_is_not():
    assert is_empty("-- The change, e.g.: ALTER TABLE users ADD x int;\n/* more */\n  \n")
    assert is_empty("")
    assert not is_empty("-- a comment\nSELECT 1")
    assert not is_empty("CREATE TABL x")  # unparseable is not empty: it is reported as a syntax error


def test_a_syntax_error_carries_its_line():
    with pytest.raises(SQLSyntaxError) as raised:
        split("SELECT 1;\n\nCREATE TABL x (id int);", first_line=5)
    assert raised.value.line == 7 and "TABL" in str(raised.value)


# ---- linear in the size of the SQL ----------------------------------------------------------------


def test_every_statement_of_a_ten_megabyte_file_is_found_at_its_line():
    # 200,000 statements, every tenth spread over three lines: counting lines from the start of the
    # text for each statement took minutes here; counted from one statement to the next, seconds.
    parts, expected_lines, line = [], [], 1
    for i in range(200_000):
        expected_lines.append(line)
        if i % 10 == 0:
            parts.append(f"INSERT INTO t\nVALUES ({i},\n'é text');\n")
            line += 3
        else:
            parts.append(f"INSERT INTO t VALUES ({i}, 'some text');\n")
            line += 1
    sql = "".join(parts)
    assert len(sql) > 8_000_000
    statements = split(sql, first_line=5)
    assert len(statements) == 200_000
    assert [s.line for s in statements] == [n + 4 for n in expected_lines]
    assert statements[-1].sql == "INSERT INTO t VALUES (199999, 'some text')"


def test_only_statements_whose_kind_may_need_it_are_parsed_into_a_tree(monkeypatch):
    from dbmigrate.engine import statements as module

    parsed: list[str] = []
    real = module.parser.parse_sql_json
    monkeypatch.setattr(module.parser, "parse_sql_json", lambda text: parsed.append(text) or real(text))
    long_comment = "/* " + "x" * 2000 + " */ "  # comments before a statement are not part of it
    sql = (
        "".join(
            f"INSERT INTO t VALUES ({i}, '{'x' * 600}');\nUPDATE t SET x = {i};\nDELETE FROM t WHERE y = 'commit';\n"
            for i in range(1000)
        )
        + "CREATE INDEX CONCURRENTLY i ON t (x);\n"
        + "-- a comment\nBEGIN;\n"
        + long_comment
        + "VACUUM t;\n"
        + "SELECT pg_catalog.set_config('search_path', '', false);\n"
        + "CREATE TABLE u (x int);\n"
        + "ALTER TABLE u ADD COLUMN y int;\n"
        + "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; COMMIT $$;\n"
    )
    found = split(sql)
    assert len(found) == 3007
    last = found[-7:]
    outside = ["CREATE INDEX CONCURRENTLY", None, "VACUUM", None, None, None, None]
    assert [s.outside_transaction for s in last] == outside
    assert [s.transaction_control for s in last] == [False, True, False, False, False, False, False]
    assert [s.session_setting for s in last] == [False, False, False, True, False, False, False]
    assert last[0].index_build is not None and last[0].index_build.index == "i"
    assert not any(s.outside_transaction or s.transaction_control or s.session_setting for s in found[:-7])
    assert parsed == [
        "CREATE INDEX CONCURRENTLY i ON t (x)",
        "BEGIN",
        "VACUUM t",
        "SELECT pg_catalog.set_config('search_path', '', false)",
    ]


def test_splitting_sql_runs_none_of_pglasts_ast_and_enum_modules_until_something_uses_them():
    """Splitting needs only pglast's parser: its AST and enum modules (19 of the 22 ms pglast takes to
    import) run on first use, and then whole, as an ordinary import would leave them. A fresh
    interpreter, so that no other test's import hides one."""
    out = fresh_python(
        """
        import sys
        from dbmigrate.engine import statements
        statements.split("CREATE INDEX CONCURRENTLY i ON t (x); SELECT 1")
        # Read without running the module (a lazy module runs on any attribute read of its own).
        names = lambda name: object.__getattribute__(sys.modules[name], "__dict__")
        loaded = lambda name: "CmdType" in names(name) or "SelectStmt" in names(name)
        before = [loaded("pglast.ast"), loaded("pglast.enums")]
        from pglast import ast, enums
        import pglast
        from pglast.stream import RawStream
        (raw,) = pglast.parse_sql("SELECT 1")
        print(before, ast.SelectStmt.__name__, enums.CmdType.__name__, pglast.ast is ast, RawStream()(raw))
    """
    )
    assert out == "[False, False] SelectStmt CmdType True SELECT 1"


def test_a_kind_refused_in_a_transaction_without_a_sample_statement_stops_the_import(monkeypatch):
    """A kind is parsed into a tree, and so found, only when a sample taught its number: one added to
    the list of kinds refused inside a transaction without a sample would go unseen, so it is refused."""
    from dbmigrate.engine import statements as module

    monkeypatch.setitem(module._NEVER_IN_TRANSACTION, "CreateFutureStmt", "CREATE FUTURE")
    with pytest.raises(RuntimeError, match="has no statement of CreateFutureStmt"):
        module._special_kinds()
