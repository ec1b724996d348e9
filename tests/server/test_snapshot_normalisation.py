"""Unit tests (no server): schema snapshots normalise what varies between machines and majors,
and a difference is shown as a unified diff of the snapshot against the database."""

from __future__ import annotations

from dbmigrate.server.schema_dump import normalise, unified_diff

DUMP_16 = """--
-- PostgreSQL database dump
--

\\restrict abc123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);


CREATE TABLE public.snapshots_2026_11 (
    id uuid NOT NULL,
    price numeric(20,8) NOT NULL
);

\\unrestrict abc123
"""

DUMP_18 = """--
-- PostgreSQL database dump
--

\\restrict other-key

SET statement_timeout = 0;
SET transaction_timeout = 0;

CREATE TABLE public.snapshots_2026_11 (
    id uuid CONSTRAINT snapshots_id_not_null NOT NULL,
    price numeric(20,8) CONSTRAINT snapshots_price_not_null NOT NULL
);
"""


def test_headers_settings_restrict_keys_and_blank_runs_are_dropped():
    assert normalise(DUMP_16) == (
        "CREATE TABLE public.snapshots_2026_11 (\n    id uuid NOT NULL,\n    price numeric(20,8) NOT NULL\n);\n"
    )


def test_postgresql_18_default_not_null_names_compare_equal_to_older_majors():
    assert normalise(DUMP_18) == normalise(DUMP_16)


def test_a_named_not_null_constraint_that_is_not_the_default_name_is_kept():
    text = "CREATE TABLE t (\n    id uuid CONSTRAINT id_required NOT NULL\n);\n"
    assert "CONSTRAINT id_required NOT NULL" in normalise(text)


def test_a_difference_is_a_unified_diff_of_the_snapshot_against_the_database():
    old = "CREATE TABLE t (\n    email character varying(255)\n);\n"
    new = "CREATE TABLE t (\n    email text\n);\n"
    assert unified_diff(old, new, "schema/orion.sql", "the migrated database") == [
        "--- schema/orion.sql",
        "+++ the migrated database",
        "@@ -1,3 +1,3 @@",
        " CREATE TABLE t (",
        "-    email character varying(255)",
        "+    email text",
        " );",
    ]
    assert unified_diff(old, old, "a", "b") == []


def test_a_long_diff_is_cut_saying_how_much_more_there_is():
    old = "".join(f"line {i}\n" for i in range(200))
    lines = unified_diff(old, "", "a", "b", limit=10)
    assert len(lines) == 11 and lines[-1] == "... (193 more lines of diff)"
