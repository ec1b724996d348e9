"""Import and adoption on a real server: an imported history builds what the source files build
with psql, and a database the original tool migrated is adopted without running anything twice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from histories.generate import STEPS, flyway_versions

from dbmigrate.core.releases import DEFAULT_MAJOR
from dbmigrate.importing.source import FORMATS
from dbmigrate.server import install as postgres_install
from dbmigrate.server.catalog import first_difference
from dbmigrate.testing.helpers import Databases, catalog_of, run_sql, with_connection

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
APP = "rfq"


def _psql() -> str:
    """The project's own PostgreSQL build's psql (make venv installs it), else the system's."""
    bundled = postgres_install.bin_dir(DEFAULT_MAJOR) / "psql"
    if bundled.exists():
        return str(bundled)
    return shutil.which("psql") or str(postgres_install.ensure_installed(DEFAULT_MAJOR) / "psql")


PSQL = _psql()
TOOL_TABLES = {"pgmigrations", "schema_migrations", "flyway_schema_history"}


def source_scripts(tool: str) -> list[tuple[str, str]]:
    """(version as the tool records it, up SQL) of each source migration, in the tool's order,
    read straight from the files (not through the importer)."""
    folder = HISTORIES / tool
    if tool == "dbmate":
        return [
            (p.name.split("_")[0], p.read_text().split("-- migrate:down")[0].split("\n", 1)[1])
            for p in sorted(folder.glob("*.sql"))
        ]
    if tool == "golang-migrate":
        return [(str(int(p.name.split("_")[0])), p.read_text()) for p in sorted(folder.glob("*.up.sql"))]
    if tool == "flyway":
        scripts = []
        for version in flyway_versions():
            [path] = folder.rglob(f"V{version}__*.sql")
            scripts.append((version.replace("_", "."), path.read_text()))
        return scripts
    return [
        (p.stem, p.read_text().split("-- Down Migration")[0].removeprefix("-- Up Migration\n"))
        for p in sorted(folder.glob("*.sql"))
    ]


def psql_apply(url: str, scripts: list[tuple[str, str]], tmp_path: Path) -> None:
    """Apply each script as the tools do: one transaction each, except CONCURRENTLY ones."""
    for number, (_, sql) in enumerate(scripts, start=1):
        script = tmp_path / f"script_{number}.sql"
        script.write_text(sql)
        single = [] if "CONCURRENTLY" in sql else ["-1"]
        result = subprocess.run(
            [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", *single, "-d", url, "-f", str(script)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"psql failed on migration {number}: {result.stderr}"


DBMATE_TABLE = "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY);"
GOLANG_MIGRATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
)
NODE_PG_MIGRATE_TABLE = (
    "CREATE TABLE pgmigrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);"
)


def tool_bookkeeping(tool: str, versions: list[str]) -> str:
    """The tool's own table, as the tool creates and fills it, saying `versions` are applied."""
    if tool == "dbmate":
        rows = ", ".join(f"('{v}')" for v in versions)
        return DBMATE_TABLE + (f"INSERT INTO schema_migrations (version) VALUES {rows};" if versions else "")
    if tool == "golang-migrate":  # one row: the last version applied
        return GOLANG_MIGRATE_TABLE + (
            f"INSERT INTO schema_migrations (version, dirty) VALUES ({versions[-1]}, false);" if versions else ""
        )
    if tool == "node-pg-migrate":
        rows = ", ".join(f"('{v}', now())" for v in versions)
        return NODE_PG_MIGRATE_TABLE + (f"INSERT INTO pgmigrations (name, run_on) VALUES {rows};" if versions else "")
    rows = ", ".join(
        f"({rank}, '{v}', '{STEPS[rank - 1].name}', 'SQL', 'V{v}__x.sql', 0, 'flyway', 5, true)"
        for rank, v in enumerate(versions, start=1)
    )
    return FLYWAY_TABLE + (f"{FLYWAY_INSERT} {rows};" if versions else "")


FLYWAY_INSERT = (
    "INSERT INTO flyway_schema_history "
    "(installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES"
)
FLYWAY_TABLE = """
CREATE TABLE flyway_schema_history (
    installed_rank integer NOT NULL CONSTRAINT flyway_schema_history_pk PRIMARY KEY,
    version varchar(50),
    description varchar(200) NOT NULL,
    type varchar(20) NOT NULL,
    script varchar(1000) NOT NULL,
    checksum integer,
    installed_by varchar(100) NOT NULL,
    installed_on timestamp NOT NULL DEFAULT now(),
    execution_time integer NOT NULL,
    success boolean NOT NULL
);
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);
"""


def without_tool_tables(catalog: dict) -> dict:
    return {kind: [row for row in rows if not any(t in row for t in TOOL_TABLES)] for kind, rows in catalog.items()}


def row_counts(url: str) -> dict[str, int]:
    """Rows in each of the history's tables: data migrations that ran twice would show here."""

    async def count(conn):
        tables = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'm') AND relname LIKE 'wh\\_%' "
            "AND relnamespace = 'public'::regnamespace"
        )
        return {t["relname"]: await conn.fetchval(f'SELECT count(*) FROM "{t["relname"]}"') for t in tables}

    return with_connection(url, count)


def scratch_database(dbs: Databases, server_url: str, name: str, template: str | None = None) -> str:
    suffix = f' TEMPLATE "{dbs.prefix}_{template}"' if template else ""
    run_sql(server_url, f'CREATE DATABASE "{dbs.prefix}_{name}"{suffix}')
    return dbs.url(APP).replace(f"{dbs.prefix}_orion_rfq", f"{dbs.prefix}_{name}")


def drop_scratch(dbs: Databases, server_url: str, name: str) -> None:
    run_sql(server_url, f'DROP DATABASE IF EXISTS "{dbs.prefix}_{name}" WITH (FORCE)')


def fresh_app(project: Path) -> None:
    """The app starts with no migrations of its own: its history is the imported one, and its
    tables.py describes no table (the imported SQL's tables have no Piccolo models)."""
    for path in (project / APP / "piccolo_migrations").glob(f"{APP}_*.py"):
        path.unlink()
    (project / APP / "tables.py").write_text('"""No Piccolo tables: the history is imported SQL."""\n')


@pytest.mark.parametrize("tool", FORMATS)
def test_imported_history_migrates_to_the_same_schema_and_data_as_psql_applying_its_files(
    tool: str, project: Path, dbs: Databases, server_url: str, tmp_path: Path
):
    dbs.cli("migrate", APP)  # the app's own migrations first: the import goes after them
    psql_url = scratch_database(dbs, server_url, "psql", template="orion_rfq")
    try:
        psql_apply(psql_url, source_scripts(tool), tmp_path)
        dbs.cli("import", APP, "--from", str(HISTORIES / tool))
        dbs.cli("migrate", APP)
        assert first_difference(catalog_of(psql_url), dbs.catalog(APP)) is None
        assert row_counts(dbs.url(APP)) == row_counts(psql_url)
        assert row_counts(psql_url)["wh_orders"] == 25
        assert len(dbs.applied(APP)) == 2 + len(STEPS)
        dbs.cli("status", APP, "--check")
    finally:
        drop_scratch(dbs, server_url, "psql")


@pytest.mark.parametrize("tool", FORMATS)
def test_adopting_a_database_the_tool_migrated_applies_nothing(
    tool: str, project: Path, dbs: Databases, tmp_path: Path
):
    fresh_app(project)
    scripts = source_scripts(tool)
    psql_apply(dbs.url(APP), scripts, tmp_path)
    with_connection(dbs.url(APP), lambda conn: conn.execute(tool_bookkeeping(tool, [v for v, _ in scripts])))
    schema, rows = dbs.catalog(APP), row_counts(dbs.url(APP))

    dbs.cli("import", APP, "--from", str(HISTORIES / tool))
    adopted = dbs.cli("baseline", APP, "--from-tool", tool)
    assert f"marked {len(STEPS)} migration(s) as applied" in adopted.stdout
    recorded = dbs.applied(APP)
    assert len(recorded) == len(STEPS)

    dbs.cli("migrate", APP)
    assert dbs.applied(APP) == recorded  # nothing ran
    assert dbs.catalog(APP) == schema and row_counts(dbs.url(APP)) == rows
    dbs.cli("status", APP, "--check")
    again = dbs.cli("baseline", APP, "--from-tool", tool)
    assert "marked 0 migration(s)" in again.stdout and dbs.applied(APP) == recorded


@pytest.mark.parametrize("tool", FORMATS)
def test_adopting_a_partly_migrated_database_runs_only_what_the_tool_had_not(
    tool: str, project: Path, dbs: Databases, server_url: str, tmp_path: Path
):
    fresh_app(project)
    scripts = source_scripts(tool)
    done = 20
    psql_apply(dbs.url(APP), scripts[:done], tmp_path)
    with_connection(dbs.url(APP), lambda conn: conn.execute(tool_bookkeeping(tool, [v for v, _ in scripts[:done]])))
    dbs.cli("import", APP, "--from", str(HISTORIES / tool))
    assert f"{len(STEPS) - done} imported migration(s) pending" in dbs.cli("baseline", APP, "--from-tool", tool).stdout
    dbs.cli("migrate", APP)
    assert len(dbs.applied(APP)) == len(STEPS)

    full_url = scratch_database(dbs, server_url, "full")
    try:
        psql_apply(full_url, scripts, tmp_path)
        assert first_difference(catalog_of(full_url), without_tool_tables(dbs.catalog(APP))) is None
        assert row_counts(dbs.url(APP)) == row_counts(full_url)
    finally:
        drop_scratch(dbs, server_url, "full")


def test_flyway_baseline_and_undo_rows_count_as_flyway_counts_them(project: Path, dbs: Databases, tmp_path: Path):
    """Flyway baselined at 9.1 (versions up to it are taken as applied), then ran 9.2 to 19.5,
    then 21, then undid 21."""
    fresh_app(project)
    scripts = source_scripts("flyway")
    psql_apply(dbs.url(APP), scripts[:20], tmp_path)
    rows = ["(1, '9.1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'f', 0, true)"]
    rows += [
        f"({rank}, '{version}', 'd', 'SQL', 'V{version}__d.sql', 1, 'f', 3, true)"
        for rank, (version, _) in enumerate(scripts[10:21], start=2)
    ]
    rows.append(f"(13, '{scripts[20][0]}', 'd', 'UNDO_SQL', 'U{scripts[20][0]}__d.sql', 1, 'f', 3, true)")
    with_connection(
        dbs.url(APP),
        lambda conn: conn.execute(f"{FLYWAY_TABLE}{FLYWAY_INSERT} {', '.join(rows)}"),
    )
    dbs.cli("import", APP, "--from", str(HISTORIES / "flyway"))
    dbs.cli("baseline", APP, "--from-tool", "flyway")
    assert len(dbs.applied(APP)) == 20
    dbs.cli("migrate", APP)
    assert len(dbs.applied(APP)) == len(STEPS)


GOLANG_ROW = GOLANG_MIGRATE_TABLE + "INSERT INTO schema_migrations (version, dirty) VALUES "
REFUSALS = {  # imported from, FROM_TOOL, the tool table, the error
    "golang-migrate dirty": ("golang-migrate", "golang-migrate", GOLANG_ROW + "(5, true)", "dirty at version 5"),
    "golang-migrate version without a file": (
        "golang-migrate",
        "golang-migrate",
        GOLANG_ROW + "(99, false)",
        "applied 99",
    ),
    "no tool table": ("dbmate", "dbmate", "SELECT 1", "has no schema_migrations table"),
    "dbmate's table read as golang-migrate's": (
        "golang-migrate",
        "golang-migrate",
        DBMATE_TABLE + "INSERT INTO schema_migrations VALUES ('1')",
        "no dirty column",
    ),
    "golang-migrate's table read as dbmate's": ("dbmate", "dbmate", GOLANG_ROW + "(1, false)", "golang-migrate's"),
    "node-pg-migrate name without a file": (
        "node-pg-migrate",
        "node-pg-migrate",
        NODE_PG_MIGRATE_TABLE + "INSERT INTO pgmigrations (name, run_on) VALUES ('1_other', now())",
        "applied 1_other",
    ),
    "nothing imported from that tool": ("dbmate", "flyway", "SELECT 1", "no migration was imported from flyway"),
    "a pgmigrations table of another shape": (
        "node-pg-migrate",
        "node-pg-migrate",
        "CREATE TABLE pgmigrations (id serial PRIMARY KEY, migration text)",
        'pgmigrations cannot be read as node-pg-migrate\'s table: column "name" does not exist',
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_baseline_from_a_tool_refuses_what_it_cannot_account_for(case: str, project: Path, dbs: Databases):
    imported, tool, setup, expected = REFUSALS[case]
    fresh_app(project)
    dbs.cli("import", APP, "--from", str(HISTORIES / imported))
    with_connection(dbs.url(APP), lambda conn: conn.execute(setup))
    result = dbs.cli("baseline", APP, "--from-tool", tool, expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert dbs.applied(APP) == []


def test_flyway_failed_migration_is_refused_until_repaired(project: Path, dbs: Databases):
    fresh_app(project)
    dbs.cli("import", APP, "--from", str(HISTORIES / "flyway"))
    with_connection(
        dbs.url(APP),
        lambda conn: conn.execute(f"{FLYWAY_TABLE}{FLYWAY_INSERT} (1, '1', 'd', 'SQL', 'V1__d.sql', 1, 'f', 3, false)"),
    )
    result = dbs.cli("baseline", APP, "--from-tool", "flyway", expect=1)
    assert "failed migration (V1__d.sql)" in result.stderr and "flyway repair" in result.stderr
    assert dbs.applied(APP) == []


def test_baseline_takes_to_or_from_tool_not_both(dbs: Databases):
    result = dbs.cli("baseline", APP, "--to", "001", "--from-tool", "dbmate", expect=2)
    assert result.stderr.count("\n") == 1 and "not both" in result.stderr


def test_imported_downs_roll_back_to_what_psql_built_at_that_point_and_irreversible_ones_refuse(
    project: Path, dbs: Databases, server_url: str, tmp_path: Path
):
    fresh_app(project)
    scripts = source_scripts("golang-migrate")
    dbs.cli("import", APP, "--from", str(HISTORIES / "golang-migrate"))
    dbs.cli("migrate", APP)
    dbs.cli("down", APP, "--to", "014")  # reverts 036 .. 015, CONCURRENTLY ones outside a transaction
    partial_url = scratch_database(dbs, server_url, "partial")
    try:
        psql_apply(partial_url, scripts[:14], tmp_path)
        assert first_difference(catalog_of(partial_url), dbs.catalog(APP)) is None
        assert row_counts(dbs.url(APP)) == row_counts(partial_url)
    finally:
        drop_scratch(dbs, server_url, "partial")
    dbs.cli("down", APP)  # 014 had an empty up and down: nothing to undo
    refused = dbs.cli("down", APP, expect=1)  # 013 has no down in the source
    assert "013_backfill_weights" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    dbs.cli("migrate", APP)
    assert len(dbs.applied(APP)) == len(STEPS)


def test_an_imported_history_passes_db_verify(project: Path, dbs: Databases):
    """Up, down, up of every imported migration on a scratch database, the snapshot, and squawk's
    lint (what it finds in SQL that ran already is exempted, with the reason, by the import)."""
    dbs.cli("import", APP, "--from", str(HISTORIES / "dbmate"))
    assert "SQUAWK_EXEMPT" in (project / APP / "piccolo_migrations" / "rfq_017_create_suppliers.py").read_text()
    dbs.cli("schema-dump", APP, timeout=300)
    dbs.cli("verify", APP, timeout=300)
