"""The rehearsal's fill: every table of a database filled with synthetic rows by COPY, respecting
primary keys, uniques, CHECKs and foreign keys, parents before children.

`fill_database(conn, rows)` reads the tables from the catalog, plans a generator per column
(fill_values.py) and streams each table's rows with asyncpg's binary COPY
(copy_records_to_table); the tables of one level of the foreign-key order fill at once, each on a
connection of its own. Columns with a DEFAULT and nothing to satisfy are left to it, identity and
serial columns get explicit values and their sequences are moved past them, and every table is
ANALYZEd. Invariant: a child's foreign key holds a value its parent's generator gave one of the
parent's rows, so the rows satisfy every foreign key by construction (and PostgreSQL checks them).
The bench calls `fill_database` and `table_records` directly (bench/README.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from dbmigrate.commands import fill_values
from dbmigrate.commands.fill_values import CannotGenerate, Domain, Generator
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import say
from dbmigrate.engine.trace import BOOKKEEPING
from dbmigrate.server.connection import quote_identifier

CHUNK = 10_000  # rows generated (and counted for progress) at a time

_TABLES = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind::text,
       (SELECT p.partdefid::bigint FROM pg_partitioned_table p WHERE p.partrelid = c.oid) AS default_partition
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""
_COLUMNS = """
SELECT a.attrelid::bigint AS table_oid, a.attnum AS number, a.attname::text AS name, a.attnotnull AS not_null,
       a.atthasdef AS has_default, a.attidentity::text AS identity, a.attgenerated::text AS generated,
       format_type(a.atttypid, a.atttypmod) AS shown_type,
       coalesce(base.typname, t.typname)::text AS base, coalesce(base.typtype, t.typtype)::text AS typtype,
       coalesce(base.oid, t.oid)::bigint AS type_oid, elem.typname::text AS element,
       CASE WHEN a.atttypmod > 4 AND coalesce(base.typname, t.typname) IN ('varchar', 'bpchar')
            THEN a.atttypmod - 4 END AS max_length,
       pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) AS sequence
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type base ON t.typtype = 'd' AND base.oid = t.typbasetype
LEFT JOIN pg_type elem ON elem.oid = coalesce(base.typelem, t.typelem)
  AND coalesce(base.typcategory, t.typcategory) = 'A'
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_CONSTRAINTS = """
SELECT conrelid::bigint AS table_oid, contype::text, conkey::int[] AS keys, confrelid::bigint AS parent,
       confkey::int[] AS parent_keys, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE conrelid = ANY($1::oid[]) AND contype IN ('p', 'u', 'f', 'c')
UNION ALL
SELECT indrelid::bigint, 'u'::text, (SELECT array_agg(k) FROM unnest(indkey::int2[]) k WHERE k > 0)::int[], NULL, NULL,
       pg_get_expr(indexprs, indrelid)
FROM pg_index WHERE indrelid = ANY($1::oid[]) AND indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
"""
_ENUMS = "SELECT enumtypid::bigint, array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum GROUP BY enumtypid"


@dataclass
class Column:
    name: str
    number: int
    not_null: bool
    has_default: bool
    identity: str  # '', 'a' (ALWAYS) or 'd' (BY DEFAULT)
    generated: str  # '' or 's' (a stored generated column: never written)
    shown_type: str
    base: str
    typtype: str
    type_oid: int
    element: str | None
    max_length: int | None
    sequence: str | None
    domain: Domain = field(default_factory=Domain)


@dataclass
class ForeignKey:
    columns: list[str]
    parent: int
    parent_columns: list[str]


@dataclass
class Table:
    oid: int
    schema: str
    name: str
    columns: list[Column]
    uniques: list[list[str]] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    rows: int = 0
    generators: dict[str, Generator] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


@dataclass
class FillResult:
    rows: dict[str, int]  # table -> rows written
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.rows.values())


Progress = Callable[[dict[str, int], dict[str, int]], None]  # (rows written so far, rows planned)


async def read_tables(conn: asyncpg.Connection) -> list[Table]:
    """Every table (partitioned ones as their parent) of the database but the bookkeeping."""
    found = [r for r in await conn.fetch(_TABLES) if r["relname"] not in BOOKKEEPING or r["nspname"] != "public"]
    oids = [r["oid"] for r in found]
    columns: dict[int, list[Column]] = {oid: [] for oid in oids}
    for row in await conn.fetch(_COLUMNS, oids):
        columns[row["table_oid"]].append(Column(**{k: v for k, v in dict(row).items() if k != "table_oid"}))
    enums = dict(await conn.fetch(_ENUMS))
    tables = {r["oid"]: Table(r["oid"], r["nspname"], r["relname"], columns[r["oid"]]) for r in found}
    for row in await conn.fetch(_CONSTRAINTS, oids):
        table = tables[row["table_oid"]]
        names = {c.number: c.name for c in table.columns}
        keys = [names[k] for k in row["keys"] or () if k in names]
        if row["contype"] in ("p", "u"):
            table.uniques.append(
                keys + _expression_columns(row["definition"] if row["parent"] is None else None, table)
            )
        elif row["contype"] == "f" and row["parent"] in tables:
            parent = tables[row["parent"]]
            parent_names = {c.number: c.name for c in parent.columns}
            table.foreign_keys.append(ForeignKey(keys, row["parent"], [parent_names[k] for k in row["parent_keys"]]))
        elif row["contype"] == "c":
            for name, domain in fill_values.check_domains(row["definition"]).items():
                column = next((c for c in table.columns if c.name == name), None)
                if column is not None:
                    column.domain = domain
    for table in tables.values():
        for column in table.columns:
            if column.typtype == "e" and column.domain.choices is None:
                column.domain.choices = list(enums.get(column.type_oid, []))
    return list(tables.values())


def _expression_columns(expressions: str | None, table: Table) -> list[str]:
    """The columns an expression index names (`lower(email)`): made unique, to be safe."""
    if not expressions:
        return []
    return [c.name for c in table.columns if c.name in expressions]


def order(tables: list[Table]) -> list[list[Table]]:
    """The tables in levels: each table after every table its foreign keys reference (a
    self-reference is filled by its own earlier rows); a cycle is a UserError."""
    by_oid = {t.oid: t for t in tables}
    level: dict[int, int] = {}

    def depth(table: Table, path: tuple[int, ...]) -> int:
        if table.oid in level:
            return level[table.oid]
        if table.oid in path:
            names = " -> ".join(by_oid[oid].shown for oid in (*path, table.oid))
            raise UserError(f"cannot fill the tables: their foreign keys form a cycle ({names}); use FROM_DB=...")
        parents = [by_oid[fk.parent] for fk in table.foreign_keys if fk.parent != table.oid]
        level[table.oid] = 1 + max((depth(p, (*path, table.oid)) for p in parents), default=-1)
        return level[table.oid]

    for table in tables:
        depth(table, ())
    levels: list[list[Table]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for table in tables:
        levels[level[table.oid]].append(table)
    return levels


def plan(tables: list[Table], rows_for: Callable[[str], int]) -> list[str]:
    """Give every table its row count and a generator per column it writes; return notes (rows
    capped so that a unique foreign key has a parent row for each child row)."""
    notes = []
    by_oid = {t.oid: t for t in tables}
    for salt, table in enumerate(t for level in order(tables) for t in level):
        table.rows = rows_for(table.shown)
        for fk in table.foreign_keys:
            parent = by_oid[fk.parent]
            if _one_to_one(table, fk) and fk.parent != table.oid and table.rows > parent.rows:
                notes.append(f"{table.shown}: {table.rows} rows capped to {parent.rows}, its parent {parent.shown}'s")
                table.rows = parent.rows
        _plan_table(table, by_oid, salt + 1)
    return notes


def _one_to_one(table: Table, fk: ForeignKey) -> bool:
    """A unique set made only of this foreign key's columns: each parent row may have one child."""
    return any(set(unique) <= set(fk.columns) for unique in table.uniques if unique)


def _plan_table(table: Table, by_oid: dict[int, Table], salt: int) -> None:
    required = {name for unique in table.uniques for name in unique}
    referenced = {
        name for t in by_oid.values() for fk in t.foreign_keys if fk.parent == table.oid for name in fk.parent_columns
    }
    unique_columns = _unique_columns(table)
    nullable = {c.name for c in table.columns if not c.not_null}
    for fk in table.foreign_keys:
        parent = by_oid[fk.parent]
        spread = not _one_to_one(table, fk)
        for column, parent_column in zip(fk.columns, fk.parent_columns, strict=True):
            table.generators[column] = _foreign(table, parent, parent_column, spread, column in nullable)
    for index, column in enumerate(table.columns):
        if column.name in table.generators or column.generated:
            continue
        needed = column.name in required or column.name in referenced or column.identity or column.sequence
        if column.has_default and not needed:
            continue  # its DEFAULT fills it
        unique = column.name in unique_columns
        try:
            generator = _column_generator(column, unique, table.rows, salt * 100 + index)
        except CannotGenerate as error:
            raise UserError(f"cannot fill {table.shown}.{column.name} ({column.shown_type}): {error}") from None
        if generator is None:
            if column.not_null:
                raise UserError(
                    f"cannot fill {table.shown}.{column.name}: no synthetic values for type {column.shown_type}; "
                    f"give it a DEFAULT, set ROWS=...,{table.shown}=0, or rehearse a copy of real data (FROM_DB=...)"
                )
            continue  # left NULL
        table.generators[column.name] = generator


def _unique_columns(table: Table) -> set[str]:
    """One column per unique set that gets a distinct value in every row (not a foreign key's)."""
    foreign = {name for fk in table.foreign_keys for name in fk.columns}
    chosen = set()
    for unique in table.uniques:
        free = [name for name in unique if name not in foreign]
        if free and not chosen.intersection(free):
            chosen.add(free[0])
    return chosen


def _column_generator(column: Column, unique: bool, rows: int, salt: int) -> Generator | None:
    if column.element is not None:
        element = fill_values.type_generator(column.element, False, rows, salt, column.name, Domain(), None)
        return None if element is None else (lambda rows_: [[value] for value in element(rows_)])
    base = "text" if column.typtype == "e" else column.base
    return fill_values.type_generator(base, unique, rows, salt, column.name, column.domain, column.max_length)


def _foreign(table: Table, parent: Table, column: str, spread: bool, nullable: bool) -> Generator:
    """A child's foreign-key column: the parent's value at row j(i): every parent row in turn, or
    row i itself when each parent row may have one child; a self-reference points at row i // 2."""
    if parent is table:
        return lambda rows_: table.generators[column]([i // 2 for i in rows_])
    if parent.rows == 0:
        if not nullable:
            raise UserError(f"cannot fill {table.shown}: its parent {parent.shown} has no rows (ROWS=...)")
        return lambda rows_: [None for _ in rows_]
    count = parent.rows
    step = 7919 if count % 7919 else 7907  # a prime that does not divide the parent's row count
    if not spread:
        return lambda rows_: parent.generators[column](rows_)
    return lambda rows_: parent.generators[column]([(i * step) % count for i in rows_])


async def table_records(
    table: Table, start: int = 0, stop: int | None = None, written: dict | None = None, after_chunk=None
):
    """The rows of `table` from `start` to `stop`, generated chunk by chunk, as COPY takes them;
    `written[table]` counts them as they go, and `after_chunk()` is called after each chunk."""
    stop = table.rows if stop is None else stop
    columns = list(table.generators)
    for first in range(start, stop, CHUNK):
        block = range(first, min(first + CHUNK, stop))
        for record in zip(*(table.generators[c](block) for c in columns), strict=True):
            yield record
        if written is not None:
            written[table.shown] += len(block)
        if after_chunk is not None:
            after_chunk()
        await asyncio.sleep(0)  # let the progress line and the other tables' COPY run


async def fill_database(
    conn: asyncpg.Connection,
    rows: int | Callable[[str], int],
    connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    progress: Progress | None = None,
) -> FillResult:
    """Fill every table reached by `conn` with `rows` rows (a number, or a function of the table's
    name), the tables of each level at once on connections from `connect`; raise UserError on a
    table that cannot be filled."""
    rows_for = rows if callable(rows) else (lambda _table: rows)
    tables = await read_tables(conn)
    for note in plan(tables, rows_for):
        say(note)
    written = {t.shown: 0 for t in tables}
    planned = {t.shown: t.rows for t in tables}
    started = time.perf_counter()
    await conn.execute("SET statement_timeout = 0")  # a table's COPY takes as long as its rows do
    for level in order(tables):
        work = [t for t in level if t.rows > 0]
        extra = [await connect() for _ in work[1:]] if connect else []
        try:
            for other in extra:
                await other.execute("SET statement_timeout = 0")
            if extra:  # the tables of one level at once, each on its own connection
                pairs = zip([conn, *extra], work, strict=True)
                await _all([_copy(c, t, written, planned, progress) for c, t in pairs])
            else:
                for table in work:
                    await _copy(conn, table, written, planned, progress)
        finally:
            for other in extra:
                other.terminate()  # it may be in the middle of a COPY that failed
    for table in tables:
        await _after(conn, table)
    return FillResult(written, time.perf_counter() - started)


async def _all(coroutines: list) -> None:
    """Run them at once; at the first failure, cancel the others, wait for them, and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _copy(conn, table: Table, written: dict, planned: dict, progress: Progress | None) -> None:
    if progress is not None:
        progress(written, planned)
    try:
        await conn.copy_records_to_table(
            table.name,
            schema_name=table.schema,
            columns=list(table.generators),
            records=table_records(
                table, written=written, after_chunk=(lambda: progress(written, planned)) if progress else None
            ),
        )
    except asyncpg.PostgresError as error:
        raise UserError(
            f"cannot fill {table.shown}: PostgreSQL refused the synthetic rows ({str(error).splitlines()[0]}); "
            f"set ROWS=...,{table.shown}=0 to leave it empty, or rehearse a copy of real data (FROM_DB=...)"
        ) from None
    if progress is not None:
        progress(written, planned)


async def _after(conn: asyncpg.Connection, table: Table) -> None:
    """Move each serial or identity sequence past the values written; ANALYZE the table."""
    quoted = f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"
    for column in table.columns:
        if column.sequence and column.name in table.generators and table.rows:
            await conn.execute(
                f"SELECT setval($1, (SELECT max({quote_identifier(column.name)}) FROM {quoted}))", column.sequence
            )
    await conn.execute(f"ANALYZE {quoted}")
