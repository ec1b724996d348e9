"""squash: `make db-migrate-squash DB=orion TO=002` writes one baseline migration equal to the
history up to 002, and verify's proof that it is.

The baseline is built from a scratch database migrated up to TO: its schema and the rows the
migrations inserted (reference data), from `pg_dump` without the framework's bookkeeping tables,
in a sibling `.up.sql` file; and Piccolo's schema snapshot at TO, as Piccolo operations in the
`.py` (as in any SQLMigration they only describe the change, so auto-migrations keep working).
Its `REPLACES` names every migration it stands for (engine/baselines.py): a new database runs the
baseline instead of them, a database that has them never runs it. A baseline already there is
replaced by the new one, which stands for it too.

verify proves a baseline while the history it replaces is still there: a database built from the
baseline and the migrations after it has the catalog (server/catalog.py) and the rows of one
built from the whole history. Then the history can be deleted in a later commit.
"""

from __future__ import annotations

import os
import subprocess
from itertools import chain
from pathlib import Path

from piccolo.apps.migrations.auto.schema_differ import SchemaDiffer
from piccolo.apps.migrations.auto.schema_snapshot import SchemaSnapshot
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.new import render_template
from piccolo.conf.apps import Finder

from dbmigrate.commands.common import resolve
from dbmigrate.commands.scaffold import compact, formatted, snapshot_manager
from dbmigrate.commands.scratch import scratch_database
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.reporting import quiet, say
from dbmigrate.engine import baselines, executor, files
from dbmigrate.engine import statements as sql_statements
from dbmigrate.engine.files import last_of, order_key
from dbmigrate.engine.piccolo_engine import piccolo_prints
from dbmigrate.engine.progress import CREATE_TABLE as CREATE_PROGRESS_TABLE
from dbmigrate.engine.progress import DONE
from dbmigrate.engine.progress import TABLE as PROGRESS_TABLE
from dbmigrate.engine.state import find
from dbmigrate.engine.target import Target
from dbmigrate.server import schema_dump
from dbmigrate.server.catalog import first_difference, schema_catalog

NAME = "squash"
# The framework's own tables: never part of a baseline.
_BOOKKEEPING = ("migration", "migration_id_seq", "dbmigrate_*")
# pg_dump's session settings (the baseline runs in the migration's transaction, maybe through
# PgBouncer: no session state) and what only an extension's owner may do.
_DROPPED = ("SET ", "SELECT pg_catalog.set_config(", "COMMENT ON EXTENSION ")


async def squash(settings: Settings, database: Database, to: str | None) -> Path:
    """Write `database`'s baseline up to migration `to`; return the path of its .py file."""
    if not (to or "").strip():
        raise UsageError("squash needs TO, the last migration the baseline stands for: e.g. TO=002")
    (target,) = await resolve(settings, [database])
    walked = target.history_walk()
    chosen = find(list(walked.files), to.strip(), target.name)
    if chosen.number is None:
        raise UsageError(f"{target.name}: {chosen.id} has no number; a baseline is numbered after what it replaces")
    covered = [m for m in walked.files if order_key(m.id) <= order_key(chosen.id)]  # by number, as they apply
    old = target.baseline
    if old is not None and old not in covered:  # the history is all there: the old baseline beside it
        last_replaced = last_of(old.replaces)
        if order_key(last_replaced) > order_key(chosen.id):
            raise UsageError(f"{target.name}: TO={to} is before {last_replaced}, the last that {old.id} stands for")
        covered.append(old)
    replaces = sorted({*chain.from_iterable(m.replaces for m in covered), *(m.id for m in covered)}, key=order_key)
    migration_id = f"{chosen.number:03d}_squashed"
    folder = files.migrations_folder(target.project_root, target.database)
    path = folder / f"{target.database.app}_{migration_id}.py"
    async with scratch_database(walked) as scratch:
        with quiet():
            await executor.migrate(scratch, to=chosen.id)
        sql = await baseline_sql(scratch)
    source = await baseline_source(target, migration_id, chosen.id, replaces)
    if old is not None and old.path != path:
        for stale in (old.path, *files.sibling_sql_files(old.path)):
            stale.unlink()
    path.with_name(path.stem + files.UP_SUFFIX).write_text(sql, encoding="utf-8")
    path.write_text(source, encoding="utf-8")
    say(
        f"{target.name}: wrote {path.relative_to(target.project_root)} and its .up.sql, a baseline standing for "
        f"{len(replaces)} migration(s) up to {chosen.id}: new databases run it instead of them, databases that have "
        "them never run it. Run verify, commit it; the history may be deleted in a later commit"
    )
    return path


async def baseline_sql(scratch: Target) -> str:
    """The schema and rows of the scratch database, as statements for one transaction."""
    async with scratch.connected("squash") as conn:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        finished = (
            await conn.fetch(
                f"SELECT migration_id, stages FROM {PROGRESS_TABLE} WHERE state = '{DONE}' ORDER BY migration_id"
            )
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", PROGRESS_TABLE)
            else []
        )
    command = [schema_dump.pg_dump_for(major), "--no-owner", "--no-privileges", "--no-tablespaces"]
    command += ["--no-publications", "--no-subscriptions", "--no-security-labels", "--column-inserts"]
    command += ["--rows-per-insert=100", *(f"--exclude-table={table}" for table in _BOOKKEEPING)]
    env = {**os.environ, **schema_dump.libpq_env(scratch.url)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise UserError(f"pg_dump failed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    kept = [s for s in sql_statements.split(_without_meta_commands(result.stdout)) if not s.sql.startswith(_DROPPED)]
    text = "\n\n".join(f"{_without_leading_comments(s.sql)};" for s in kept)
    if finished:  # what a later migration's require_finished() asks about the batched ones it stands for
        app = scratch.database.app
        rows = ", ".join(f"('{app}', '{r['migration_id']}', '{DONE}', {r['stages'] or 0}, now())" for r in finished)
        text += (
            f"\n\n{CREATE_PROGRESS_TABLE.strip()};\n\nINSERT INTO {PROGRESS_TABLE} "
            f"(app_name, migration_id, state, stage, finished_at) VALUES {rows};"
        )
    return f"-- The schema and reference data of the migrations this baseline stands for (pg_dump).\n\n{text}\n"


def _without_meta_commands(dump: str) -> str:
    """pg_dump's psql meta-commands (`\\restrict`, PostgreSQL 17.6+) are not SQL."""
    return "\n".join(line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def _without_leading_comments(sql: str) -> str:
    lines = sql.splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


async def baseline_source(target: Target, migration_id: str, up_to: str, replaces: list[str]) -> str:
    """The baseline's .py: Piccolo's snapshot up to `up_to` as operations, and its SQL file."""
    app = target.database.app
    app_config = Finder().get_app_config(app_name=app)
    manager = snapshot_manager(BaseMigrationManager, app, target.project_root)()
    with piccolo_prints():
        managers = await manager.get_migration_managers(app_config=app_config, max_migration_id=up_to)
        snapshot = SchemaSnapshot(managers).get_snapshot()
        alter = SchemaDiffer(schema=snapshot, schema_snapshot=[], auto_input="n").get_alter_statements()
    first, last = replaces[0], replaces[-1]
    rendered = render_template(
        migration_id=migration_id,
        auto=True,
        alter_statements=list(chain(*[s.statements for s in alter])),
        extra_imports=sorted(set(chain(*[s.extra_imports for s in alter])), key=repr),
        extra_definitions=sorted(set(chain(*[s.extra_definitions for s in alter]))),
        app_name=app,
        description=f"baseline: {first} .. {last}, squashed",
    )
    rendered = rendered.replace(
        "from piccolo.apps.migrations.auto.migration_manager import MigrationManager",
        "from dbmigrate.sql import SQLMigration",
    )
    rendered = rendered.replace("MigrationManager(", "SQLMigration(")
    listed = "".join(f"    {i!r},\n" for i in replaces)
    description = f"DESCRIPTION = 'baseline: {first} .. {last}, squashed'\n"
    assert description in rendered, "Piccolo's template changed: the baseline's lines have no place"
    rendered = rendered.replace(
        description,
        description + "# The migrations this baseline stands for: a database that has any of them never runs it.\n"
        f"REPLACES = [\n{listed}]\nSQUAWK_EXEMPT = {_SQUAWK_EXEMPT!r}\n",
    )
    rendered = rendered.replace("    return manager", "    manager.sql_files(__file__)\n    return manager")
    header = _HEADER.format(app=app, first=first, last=last, name=target.name, number=migration_id.split("_")[0])
    return header + formatted(compact(rendered), target.project_root)


# A baseline builds a new, empty database: what squawk guards against on a live table cannot happen.
_SQUAWK_EXEMPT = {
    "adding-foreign-key-constraint": "a baseline builds a new, empty database",
    "require-concurrent-index-creation": "a baseline builds a new, empty database",
    "adding-serial-primary-key-field": "a baseline builds a new, empty database",
    "constraint-missing-not-valid": "a baseline builds a new, empty database",
    "disallowed-unique-constraint": "a baseline builds a new, empty database",
    "adding-required-field": "a baseline builds a new, empty database",
    "ban-char-field": "as the migrations it replaces wrote it",
    "prefer-identity": "as the migrations it replaces wrote it",
    "prefer-timestamptz": "as the migrations it replaces wrote it",
}

_HEADER = '''"""{app} baseline: the migrations {first} .. {last}, squashed.

Written by `make db-migrate-squash DB={name} TO={number}`. It runs only on a database where none
of the migrations in REPLACES is applied (a new one), in their place; a database that has them
never runs it. The database is changed by the SQL beside it (the .up.sql: pg_dump of a database
migrated up to the last of them, schema and rows); the Piccolo operations in forwards() are
Piccolo's schema snapshot there, and are never executed. Irreversible.
"""

'''


async def check_baseline(walked: Target, target: Target, report, completed: bool) -> None:
    """verify: with the history still there, a database from the baseline equals `walked`, the
    scratch database verify migrated through the whole history."""
    baseline = target.baseline
    if baseline is None or not baselines.history_complete(walked.files, baseline):
        return  # no baseline, or the history is gone and the walk itself started from the baseline
    if not completed:
        report.skip(NAME, f"the history did not all apply, so {baseline.id} is not compared with it")
        return
    async with walked.connected("squash") as conn:
        history, history_rows = await schema_catalog(conn), await _rows(conn)
    problems = []
    async with scratch_database(target) as scratch:  # empty: it takes the baseline
        try:
            with quiet():
                await executor.migrate(scratch)
        except UserError as error:
            problems.append(f"a new database from {baseline.id} does not migrate: {error}")
        else:
            async with scratch.connected("squash") as conn:
                difference = first_difference(history, await schema_catalog(conn))
                rows = await _rows(conn)
            if difference:
                problems.append(f"{baseline.id} builds another schema than the history it replaces: {difference}")
            elif rows != history_rows:
                table = next(t for t in sorted(history_rows.keys() | rows.keys()) if history_rows.get(t) != rows.get(t))
                problems.append(f"{baseline.id} gives table {table} other rows than the history it replaces")
    report.check(
        NAME,
        problems,
        f"{baseline.id} builds the catalog and the rows of the {len(baseline.replaces)} migration(s) it replaces",
    )


async def _rows(conn) -> dict[str, str]:
    """Each table's rows, as one digest per table (the framework's own tables left out)."""
    tables = await conn.fetch(
        "SELECT quote_ident(relname) AS name FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace = 'public'::regnamespace AND relname <> 'migration' AND relname NOT LIKE 'dbmigrate\\_%' "
        "ORDER BY relname"
    )
    digests = {}
    for table in tables:
        digests[table["name"]] = await conn.fetchval(
            "SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) "
            f"FROM {table['name']} t"
        )
    return digests
