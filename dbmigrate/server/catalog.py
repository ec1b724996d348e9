"""A schema as PostgreSQL's catalogs describe it, normalized so that two databases compare equal.

`schema_catalog` reads the schemas, tables, columns (in their order, with their collation),
constraints, indexes, triggers, functions, views, sequences, enum and domain types, row-level
security policies and extensions of every schema that is not PostgreSQL's own (pg_catalog,
information_schema, pg_toast, temporary schemas) nor an extension's, leaving out the framework's
own objects (Piccolo's `migration` table, anything named `dbmigrate_*`). Objects of schema
`public` are named as they are (`users.email`), those of other schemas with their schema
(`audit.events.id`). `first_difference` names the first thing that differs, in one line.
"""

from __future__ import annotations

import re

import asyncpg

Catalog = dict[str, list[str]]


def _user_schema(namespace: str) -> str:
    """SQL condition: the schema `namespace` (an SQL expression for a pg_namespace row alias) is the
    user's: not PostgreSQL's own, not a temporary one, not an extension's, not the framework's."""
    return (
        f"{namespace}.nspname NOT IN ('pg_catalog', 'information_schema') "
        f"AND {namespace}.nspname NOT LIKE 'pg\\_toast%' AND {namespace}.nspname NOT LIKE 'pg\\_temp\\_%' "
        f"AND {namespace}.nspname NOT LIKE 'dbmigrate%' "
        f"AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_namespace'::regclass "
        f"AND e.objid = {namespace}.oid AND e.deptype = 'e')"
    )


def _qualified(namespace: str, name: str) -> str:
    """SQL expression: `name` as shown, with its schema unless that is public."""
    return f"(CASE WHEN {namespace}.nspname = 'public' THEN '' ELSE {namespace}.nspname || '.' END || {name})"


def _not_framework(*names: str) -> str:
    """SQL condition: none of `names` (SQL expressions) names a framework object."""
    return " AND ".join(
        f"{name} NOT IN ('migration', 'migration_id_seq') AND {name} NOT LIKE 'dbmigrate\\_%'" for name in names
    )


_QUERIES: dict[str, str] = {
    "schemas": f"""
        SELECT n.nspname FROM pg_namespace n WHERE {_user_schema("n")}
    """,
    "tables": f"""
        SELECT {_qualified("n", "c.relname")}
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user_schema("n")} AND c.relkind IN ('r', 'p') AND {_not_framework("c.relname")}
    """,
    # Each column with its place among the table's columns (a dropped one leaves no gap), so a
    # rollback that puts a column back elsewhere is a difference, and its collation unless default.
    "columns": f"""
        SELECT {_qualified("n", "c.relname")} || '.' || a.attname
            || ' #' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
            || ' ' || format_type(a.atttypid, a.atttypmod)
            || CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
            || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
            || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE {_user_schema("n")} AND c.relkind IN ('r', 'p') AND a.attnum > 0
            AND NOT a.attisdropped AND {_not_framework("c.relname")}
    """,
    "constraints": f"""
        SELECT {_qualified("n", "c.relname")} || ' ' || k.conname || ' ' || k.contype::text || ' '
            || pg_get_constraintdef(k.oid)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user_schema("n")} AND {_not_framework("c.relname", "k.conname")}
    """,
    "indexes": f"""
        SELECT {_qualified("n", "i.relname")} || ' ' || pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user_schema("n")} AND {_not_framework("c.relname", "i.relname")}
    """,
    "triggers": f"""
        SELECT {_qualified("n", "t.tgname")} || ' ' || pg_get_triggerdef(t.oid)
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user_schema("n")} AND NOT t.tgisinternal AND {_not_framework("c.relname", "t.tgname")}
    """,
    "functions": f"""
        SELECT {_qualified("n", "p.proname")} || '(' || pg_get_function_identity_arguments(p.oid) || ') '
            || pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_user_schema("n")} AND p.prokind IN ('f', 'p') AND {_not_framework("p.proname")}
            AND NOT EXISTS (  -- functions of extensions (e.g. pgcrypto) are not the schema's
                SELECT FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e')
    """,
    "views": f"""
        SELECT {_qualified("n", "c.relname")} || ' ' || c.relkind::text || ' ' || pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user_schema("n")} AND c.relkind IN ('v', 'm') AND {_not_framework("c.relname")}
    """,
    "sequences": f"""
        SELECT {_qualified("n", "c.relname")} || ' ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart
            || ' increment ' || s.seqincrement
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_user_schema("n")} AND {_not_framework("c.relname")}
    """,
    "types": f"""
        SELECT {_qualified("n", "t.typname")} || ' ' || t.typtype::text || ' '
            || COALESCE((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod))
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_user_schema("n")} AND t.typtype IN ('e', 'd')
            AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.objid = t.oid AND e.deptype = 'e')
    """,
    "policies": f"""
        SELECT {_qualified("n", "p.tablename")} || ' ' || p.policyname || ' ' || p.cmd || ' '
            || COALESCE(p.qual, '') || ' ' || COALESCE(p.with_check, '')
        FROM pg_policies p JOIN pg_namespace n ON n.nspname = p.schemaname
        WHERE {_user_schema("n")}
    """,
    "extensions": """
        SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'
    """,
}


async def schema_catalog(conn: asyncpg.Connection) -> Catalog:
    """Each kind of object of the user's schemas (schemas, tables, columns, ...) as a sorted list of
    one-line descriptions (whitespace runs, e.g. in function bodies, collapsed to one space)."""
    catalog: Catalog = {}
    for kind, query in _QUERIES.items():
        rows = await conn.fetch(query)
        catalog[kind] = sorted(" ".join(row[0].split()) for row in rows)
    return catalog


_COLUMN_PLACE = re.compile(r" #[0-9]+ ")


def without_column_places(catalog: Catalog) -> Catalog:
    """`catalog` with each column's place left out (`users.email text`): PostgreSQL appends a column
    added again, so a rollback of DROP COLUMN can restore everything but the place."""
    columns = sorted(_COLUMN_PLACE.sub(" ", column, count=1) for column in catalog.get("columns", []))
    return {**catalog, "columns": columns}


def first_difference(expected: Catalog, actual: Catalog) -> str | None:
    """One line naming the first difference, e.g. `columns: missing users.email ...`; None if equal.

    A changed object (same name, other definition) shows both sides: `expected X, got Y`.
    """
    extra_kinds = sorted((expected.keys() | actual.keys()) - _QUERIES.keys())
    for kind in [*_QUERIES, *extra_kinds]:
        want, got = expected.get(kind, []), actual.get(kind, [])
        if want == got:
            continue
        # Sets and a dict by name: linear in the size of the schema (verify compares after every step).
        want_set, got_set = set(want), set(got)
        missing = [item for item in want if item not in got_set]
        unexpected = [item for item in got if item not in want_set]
        unexpected_by_name: dict[str, str] = {}
        for other in unexpected:
            unexpected_by_name.setdefault(_name(kind, other), other)
        for item in missing:
            changed = unexpected_by_name.get(_name(kind, item))
            if changed is not None:
                return f"{kind}: expected {item}, got {changed}"
        if missing:
            return f"{kind}: missing {missing[0]}"
        if unexpected:
            return f"{kind}: unexpected {unexpected[0]}"
        return f"{kind}: expected {len(want)} entries, got {len(got)}"  # same items, different multiplicity
    return None


def _name(kind: str, description: str) -> str:
    """What a one-line description is of: `users.email` of `users.email #2 text NOT NULL`, the table
    and name of a constraint, the name of any other object."""
    words = description.split(" ")
    return " ".join(words[:2]) if kind == "constraints" else words[0]
