"""The bookkeeping does not depend on a migration's search_path (issue 16, class 6): a migration
pasted from pg_dump (which empties the search_path), or a non-transactional one that SETs it, is
recorded as applied, leaves nothing set for the next migration, and Piccolo's own `migrations
check` agrees; an application table already named `migration` is refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from migration_files import write_sql_migration
from support import Databases, migration_ids

from dbmigrate.core.urls import database_name

PICCOLO = str(Path(sys.executable).parent / "piccolo")
PG_DUMP_STYLE = (
    "SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.zz_dumped (id integer NOT NULL);\n"
)


def piccolo_check(dbs: Databases) -> list[str]:
    env = {k: v for k, v in dbs.env.items() if k != "ORION_DB"}
    result = subprocess.run(
        [PICCOLO, "migrations", "check", "orion"], cwd=dbs.cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.rstrip().endswith(("| True", "| False"))]


def one_line(result) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("transactional", [True, False])
def test_a_migration_that_empties_the_search_path_is_recorded_and_leaves_it_for_no_one(
    project, dbs: Databases, transactional
):
    write_sql_migration(project, "orion", "905_dumped", PG_DUMP_STYLE, "DROP TABLE public.zz_dumped;", transactional)
    write_sql_migration(project, "orion", "906_plain", "CREATE TABLE zz_plain (id int)", "DROP TABLE zz_plain")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + ["905_dumped", "906_plain"]
    assert {"zz_dumped", "zz_plain"} <= dbs.tables("orion")  # 906 ran with the default search_path
    assert dbs.cli("status", "orion", "--check").returncode == 0
    dbs.cli("down", "orion", "--steps", "2")
    assert not {"zz_dumped", "zz_plain"} & dbs.tables("orion")


def test_a_non_transactional_migration_setting_its_own_search_path_is_recorded(project, dbs: Databases):
    write_sql_migration(
        project, "orion", "905_schema", "CREATE SCHEMA app; CREATE TABLE app.t (id int)", "DROP SCHEMA app CASCADE"
    )
    write_sql_migration(
        project,
        "orion",
        "906_index",
        "SET search_path = app;\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);",
        "SET search_path = app;\nDROP INDEX CONCURRENTLY t_id_idx;",
        transactional=False,
    )
    write_sql_migration(project, "orion", "907_plain", "CREATE TABLE zz_plain (id int)", "DROP TABLE zz_plain")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion") + ["905_schema", "906_index", "907_plain"]
    assert dbs.sql("orion", "SELECT to_regclass('app.t_id_idx') IS NOT NULL AS built")[0]["built"]
    assert "zz_plain" in dbs.tables("orion")
    assert all(row.rstrip().endswith("| True") for row in piccolo_check(dbs))
    dbs.cli("down", "orion", "--steps", "2")
    assert dbs.sql("orion", "SELECT to_regclass('app.t_id_idx') IS NULL AS gone")[0]["gone"]


def test_piccolos_check_reads_the_same_bookkeeping_whatever_the_databases_search_path(project, dbs: Databases):
    dbs.sql("orion", "CREATE SCHEMA first")
    dbs.sql("orion", f'ALTER DATABASE "{database_name(dbs.url("orion"))}" SET search_path = first, public')
    dbs.cli("migrate", "orion")
    rows = piccolo_check(dbs)
    assert len(rows) == len(migration_ids("orion")) and all(r.rstrip().endswith("| True") for r in rows)
    assert dbs.sql("orion", "SELECT to_regclass('first.migration') IS NULL AS none")[0]["none"]


def test_an_application_table_named_migration_is_refused_in_one_line(project, dbs: Databases):
    dbs.sql("orion", "CREATE TABLE public.migration (code text PRIMARY KEY, payload jsonb)")
    for command in (["migrate", "orion"], ["status", "orion"], ["down", "orion"]):
        line = one_line(dbs.cli(*command, expect=1))
        assert "table public.migration is not Piccolo's bookkeeping table (its columns: code, payload" in line, line
        assert "ALTER TABLE public.migration RENAME TO" in line
    assert dbs.sql("orion", "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")[0]["n"] == 1
