"""Unit tests (no server): schema snapshots normalise what varies between machines and majors,
and a difference is named by line with both sides."""

from __future__ import annotations

from dbmigrate.server.schema_dump import first_difference, normalise

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


def test_a_difference_names_the_line_and_both_sides():
    old = "CREATE TABLE t (\n    email character varying(255)\n);\n"
    new = "CREATE TABLE t (\n    email text\n);\n"
    assert first_difference(old, new) == (
        "line 2: snapshot has ['email character varying(255)'] database has ['email text']"
    )
    assert first_difference(old, old) is None
