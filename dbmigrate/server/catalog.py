"""A schema as PostgreSQL's catalogs describe it, normalized so that two databases compare equal.

`schema_catalog` reads tables, columns, constraints, indexes, triggers, functions, views,
sequences, enum and domain types, row-level security policies and extensions of one schema,
leaving out the framework's own objects (Piccolo's `migration` table, anything named
`dbmigrate_*`). `first_difference` names the first thing that differs, in one line.
"""

from __future__ import annotations

import asyncpg

Catalog = dict[str, list[str]]


def _not_framework(*names: str) -> str:
    """SQL condition: none of `names` (SQL expressions) names a framework object."""
    return " AND ".join(
        f"{name} NOT IN ('migration', 'migration_id_seq') AND {name} NOT LIKE 'dbmigrate\\_%'" for name in names
    )


_QUERIES: dict[str, str] = {
    "tables": f"""
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND {_not_framework("c.relname")}
    """,
    "columns": f"""
        SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
            || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
            || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0
            AND NOT a.attisdropped AND {_not_framework("c.relname")}
    """,
    "constraints": f"""
        SELECT c.relname || ' ' || k.conname || ' ' || k.contype::text || ' '
            || pg_get_constraintdef(k.oid)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND {_not_framework("c.relname", "k.conname")}
    """,
    "indexes": f"""
        SELECT i.relname || ' ' || pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND {_not_framework("c.relname", "i.relname")}
    """,
    "triggers": f"""
        SELECT t.tgname || ' ' || pg_get_triggerdef(t.oid)
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND NOT t.tgisinternal AND {_not_framework("c.relname", "t.tgname")}
    """,
    "functions": f"""
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
            || pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = $1 AND p.prokind IN ('f', 'p') AND {_not_framework("p.proname")}
            AND NOT EXISTS (  -- functions of extensions (e.g. pgcrypto) are not the schema's
                SELECT FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e')
    """,
    "views": f"""
        SELECT c.relname || ' ' || c.relkind::text || ' ' || pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('v', 'm') AND {_not_framework("c.relname")}
    """,
    "sequences": f"""
        SELECT c.relname || ' ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart
            || ' increment ' || s.seqincrement
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND {_not_framework("c.relname")}
    """,
    "types": """
        SELECT t.typname || ' ' || t.typtype::text || ' '
            || COALESCE((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod))
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 AND t.typtype IN ('e', 'd')
    """,
    "policies": """
        SELECT tablename || ' ' || policyname || ' ' || cmd || ' ' || COALESCE(qual, '') || ' '
            || COALESCE(with_check, '')
        FROM pg_policies WHERE schemaname = $1
    """,
    "extensions": """
        SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' AND $1::text IS NOT NULL
    """,
}


async def schema_catalog(conn: asyncpg.Connection, schema: str = "public") -> Catalog:
    """Each kind of object in `schema` (tables, columns, ...) as a sorted list of one-line
    descriptions (whitespace runs, e.g. in function bodies, collapsed to one space)."""
    catalog: Catalog = {}
    for kind, query in _QUERIES.items():
        rows = await conn.fetch(query, schema)
        catalog[kind] = sorted(" ".join(row[0].split()) for row in rows)
    return catalog


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
            unexpected_by_name.setdefault(_name(other), other)
        for item in missing:
            changed = unexpected_by_name.get(_name(item))
            if changed is not None:
                return f"{kind}: expected {item}, got {changed}"
        if missing:
            return f"{kind}: missing {missing[0]}"
        if unexpected:
            return f"{kind}: unexpected {unexpected[0]}"
        return f"{kind}: expected {len(want)} entries, got {len(got)}"  # same items, different multiplicity
    return None


def _name(description: str) -> str:
    """What a one-line description is of: `users.email` of `users.email text NOT NULL`, the table
    and name of a constraint, the name of an index, trigger, function, view, sequence or type."""
    words = description.split(" ")
    return " ".join(words[:2]) if len(words) > 2 and not words[0].endswith(")") and "." not in words[0] else words[0]
