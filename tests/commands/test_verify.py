"""AC4 "migration validation in PR checks": db-verify passes on the real migrations and fails,
naming the migration and the first difference, on each kind of planted fault."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from migration_files import write_sql_migration
from support import ROOT, Databases


def git(project, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=project, check=True, capture_output=True
    )


def test_verify_passes_on_the_real_migrations_and_a_check_it_cannot_make_says_skip(dbs: Databases):
    out = dbs.cli("verify").stdout
    for name in ("orion", "rfq", "marketdata"):
        for check in ("migrate up, down, up", "drift", "lint"):
            assert f"{name}: ok   {check}" in out
        # The project copy is no git checkout: immutability compared nothing, so it is no "ok".
        assert f"{name}: skip immutability: not a git checkout, so there is no base branch to compare with" in out
        assert f"{name}: ok   immutability" not in out


def test_immutability_says_ok_only_once_it_compared_the_files_with_a_base(project, dbs: Databases):
    git(project, "init", "-q", "-b", "main")
    out = dbs.cli("verify", "orion").stdout
    assert "orion: skip immutability: no BASE, origin/main or main to compare with" in out
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    out = dbs.cli("verify", "orion").stdout
    assert "orion: ok   immutability: 2 migration file(s) on main unchanged; new ones number after them" in out
    out = dbs.cli("verify", "orion", "--base", "0000000000000000000000000000000000000000").stdout
    assert "orion: skip immutability: a new branch: nothing to compare with" in out


def test_a_down_that_forgets_a_column_is_caught(project, dbs: Databases):
    write_sql_migration(
        project,
        "orion",
        "905_two_columns",
        "ALTER TABLE users ADD COLUMN phone text; ALTER TABLE users ADD COLUMN fax text",
        "ALTER TABLE users DROP COLUMN phone",
    )
    err = dbs.cli("verify", "orion", expect=1).stderr
    # users has 7 columns in the fixture project: phone is the 8th, fax the 9th.
    assert "rolling back 905_two_columns does not restore the schema: columns: unexpected users.fax #9 text" in err


@pytest.mark.parametrize(
    ("forwards", "backwards", "difference"),
    [
        # Objects of a schema other than public count as much as public's.
        (
            "CREATE SCHEMA reports; CREATE TABLE reports.daily (id int)",
            "DROP TABLE reports.daily",
            "schemas: unexpected reports",
        ),
        (
            "CREATE SCHEMA reports; CREATE TABLE reports.daily (id int); CREATE INDEX daily_id ON reports.daily (id)",
            "DROP INDEX reports.daily_id; DROP TABLE reports.daily; DROP SCHEMA reports; "
            "CREATE SCHEMA reports; CREATE TABLE reports.daily (id bigint)",
            "schemas: unexpected reports",
        ),
        # A column put back with another type: its place alone would be a note (test below).
        (
            "ALTER TABLE t DROP COLUMN b",
            "ALTER TABLE t ADD COLUMN b varchar(10)",
            "columns: expected t.b #2 text, got t.b #3 character varying(10)",
        ),
        # A collation the rollback forgot.
        (
            'ALTER TABLE t ALTER COLUMN b TYPE text COLLATE "C"',
            "ALTER TABLE t ALTER COLUMN c TYPE integer",
            'columns: expected t.b #2 text, got t.b #2 text COLLATE "C"',
        ),
    ],
    ids=["a schema left behind", "another schema's table changed", "column put back changed", "collation"],
)
def test_a_rollback_that_misses_what_the_catalog_of_public_alone_missed_is_caught(
    project, dbs: Databases, forwards: str, backwards: str, difference: str
):
    write_sql_migration(project, "orion", "905_t", "CREATE TABLE t (a int, b text, c int)", "DROP TABLE t")
    write_sql_migration(project, "orion", "906_change", forwards, backwards)
    err = dbs.cli("verify", "orion", expect=1).stderr
    assert f"rolling back 906_change does not restore the schema: {difference}" in err


def test_a_rollback_of_drop_column_that_puts_the_column_back_last_is_a_note_not_a_failure(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_t", "CREATE TABLE t (a int, b text, c int)", "DROP TABLE t")
    write_sql_migration(
        project, "orion", "906_drop_b", "ALTER TABLE t DROP COLUMN b", "ALTER TABLE t ADD COLUMN b text"
    )
    verified = dbs.cli("verify", "orion", expect=1)  # lint fails: ban-drop-column
    assert "FAIL migrate up, down, up" not in verified.stderr
    assert "ok   migrate up, down, up" in verified.stdout
    assert (
        "note rolling back 906_drop_b puts a column back at another place "
        "(columns: expected t.b #2 text, got t.b #3 text)" in verified.stdout
    )


def test_the_catalog_names_the_objects_of_another_schema_with_their_schema(project, dbs: Databases):
    write_sql_migration(
        project,
        "orion",
        "905_reports",
        "CREATE SCHEMA reports; CREATE TABLE reports.daily (id int)",
        "DROP TABLE reports.daily; DROP SCHEMA reports",
    )
    dbs.cli("migrate", "orion")
    assert "reports.daily.id #1 integer" in dbs.catalog("orion")["columns"]
    assert "reports" in dbs.catalog("orion")["schemas"]


def test_a_down_that_leaves_a_sequence_behind_is_caught(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_counter", "CREATE SEQUENCE invoice_numbers", "SELECT 1")
    err = dbs.cli("verify", "orion", expect=1).stderr
    assert "rolling back 905_counter does not restore the schema: sequences: unexpected invoice_numbers" in err


def test_a_model_changed_without_a_migration_is_caught(project, dbs: Databases):
    tables = project / "rfq" / "tables.py"
    tables.write_text(
        tables.read_text() + '\n\nclass Desk(Table, tablename="desks"):\n    name = Varchar(length=100)\n'
    )
    err = dbs.cli("verify", "rfq", expect=1).stderr
    assert "rfq/tables.py has changes no migration makes" in err


def test_a_schema_change_without_a_new_snapshot_is_caught(project, dbs: Databases):
    write_sql_migration(
        project, "orion", "905_phone", "ALTER TABLE users ADD COLUMN phone text", "ALTER TABLE users DROP COLUMN phone"
    )
    err = dbs.cli("verify", "orion", expect=1).stderr
    assert "the migrated database differs from schema/orion.sql" in err and "make db-schema-dump" in err
    diff = err.splitlines()
    assert "    --- schema/orion.sql" in diff and "    +++ the migrated database" in diff
    assert "    +    phone text" in diff  # the column, as a unified diff shows it
    dbs.cli("schema-dump", "orion")
    assert "phone text" in (project / "schema" / "orion.sql").read_text()
    dbs.cli("verify", "orion")


def test_a_banned_statement_fails_lint_unless_exempted_with_a_reason(project, dbs: Databases):
    path = write_sql_migration(
        project,
        "orion",
        "905_email_text",
        "ALTER TABLE users ALTER COLUMN email TYPE text",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(255)",
    )
    dbs.cli("schema-dump", "orion")
    err = dbs.cli("verify", "orion", expect=1).stderr
    assert "905_email_text: orion/piccolo_migrations/orion_905_email_text.py line 12: changing-column-type" in err
    path.write_text(path.read_text() + '\nSQUAWK_EXEMPT = {"changing-column-type": ""}\n')
    assert "SQUAWK_EXEMPT needs a reason for changing-column-type" in dbs.cli("verify", "orion", expect=1).stderr
    path.write_text(
        path.read_text().replace(
            '{"changing-column-type": ""}', '{"changing-column-type": "varchar to text: no rewrite"}'
        )
    )
    dbs.cli("verify", "orion")


def test_an_edited_committed_migration_and_a_misnumbered_new_one_are_caught(project, dbs: Databases):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    first = project / "orion" / "piccolo_migrations" / "orion_001_initial_schema.py"
    first.write_text(first.read_text().replace("-- Tenants table", "-- Tenants table (edited)"))
    write_sql_migration(project, "orion", "000_sneaky", "SELECT 1", "SELECT 1")  # one number per file: 000
    err = dbs.cli("verify", "orion", "--base", "main", expect=1).stderr
    assert "orion/piccolo_migrations/orion_001_initial_schema.py differs from main" in err
    assert "orion_000_sneaky.py is new but numbered 000" in err


def test_the_github_workflow_is_valid_and_covers_every_database_and_version():
    subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(ROOT / ".github" / "workflows" / "migrations.yml"),
        ],
        check=True,
        capture_output=True,
    )
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "migrations.yml").read_text())
    matrix = workflow["jobs"]["verify"]["strategy"]["matrix"]
    assert matrix == {"database": ["orion", "rfq", "marketdata"], "postgres": ["15", "16", "17", "18"]}
    steps = " ".join(str(step.get("run", "")) for step in workflow["jobs"]["verify"]["steps"])
    assert "nox -s db_verify -- ${{ matrix.database }}" in steps
    assert "make test" in " ".join(str(s.get("run", "")) for s in workflow["jobs"]["tests"]["steps"])


def test_verify_stops_at_the_first_walk_failure_skips_the_snapshot_and_still_lints_every_file(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_fine", "CREATE TABLE fine (id int)", "DROP TABLE fine")
    write_sql_migration(project, "orion", "906_leaky", "CREATE TABLE leaky (id int)", "SELECT 1")
    write_sql_migration(
        project,
        "orion",
        "907_retype",
        "ALTER TABLE users ALTER COLUMN email TYPE text",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(255)",
    )
    result = dbs.cli("verify", "orion", expect=1)
    out, err = result.stdout, result.stderr
    assert "rolling back 906_leaky does not restore the schema" in out + err
    assert "stopped at 906_leaky: 3 of 5 migration(s) walked" in out + err
    assert "skip snapshot: the migrations did not all apply" in out
    assert "differs from schema/orion.sql" not in out + err  # no advice that cannot help
    assert "907_retype: orion/piccolo_migrations/orion_907_retype.py line 12: changing-column-type" in out + err


def test_lint_new_lints_only_migrations_not_on_the_base_branch(project, dbs: Databases):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    write_sql_migration(project, "orion", "905_t", "CREATE TABLE t (id int)", "DROP TABLE t")
    dbs.cli("schema-dump", "orion")
    out = dbs.cli("verify", "orion", "--base", "main", "--lint", "new").stdout
    assert "squawk finds nothing in 1 migration(s) not on the base branch (2 left out: LINT=new)" in out


def test_verify_reads_and_hashes_each_migration_file_once(project, dbs: Databases):
    for number in range(905, 925):
        write_sql_migration(
            project, "orion", f"{number}_t", f"CREATE TABLE t{number} (id int)", f"DROP TABLE t{number}"
        )
    dbs.cli("schema-dump", "orion")
    counting = (
        "import collections, sys\n"
        "from dbmigrate import cli\nfrom dbmigrate.engine import files as loader\n"
        "counts = collections.Counter()\n"
        "real = loader.sources_checksum\n"
        "def counted(sources):\n"
        "    counts[next(iter(sources))] += 1\n"
        "    return real(sources)\n"
        "loader.sources_checksum = counted\n"
        "try:\n"
        "    cli.main(['verify', 'orion'])\n"
        "finally:\n"
        "    print('hashed', len(counts), 'files, at most', max(counts.values()), 'times each', file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", counting], cwd=project, env=dbs.env, capture_output=True, text=True, timeout=300
    )
    assert "hashed 22 files, at most 1 times each" in result.stderr, result.stderr


def _scratch_databases(dbs: Databases) -> set[str]:
    rows = dbs.sql("orion", "SELECT datname FROM pg_database WHERE starts_with(datname, 'dbmigrate_verify_')")
    return {row["datname"] for row in rows}


def _verify_until_its_scratch_database_exists(dbs: Databases) -> tuple[subprocess.Popen, str]:
    """A verify of orion stopped inside a slow migration, and the name of its scratch database.
    (On the private server of this test process, `tcp_dbs`: no other test's verify drops it first.)"""
    write_sql_migration(dbs.cwd, "orion", "905_slow", "SELECT pg_sleep(30)", "SELECT 1")
    before = _scratch_databases(dbs)
    verify = dbs.popen("verify", "orion")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sleeping = dbs.sql("orion", "SELECT datname FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")
        mine = {row["datname"] for row in sleeping} - before
        if mine:
            return verify, mine.pop()
        time.sleep(0.1)
    verify.kill()
    raise AssertionError(f"verify never reached its slow migration: {verify.communicate()}")


def test_a_verify_killed_with_sigkill_leaves_a_scratch_database_the_next_verify_drops(tcp_dbs: Databases):
    dbs = tcp_dbs
    verify, scratch = _verify_until_its_scratch_database_exists(dbs)
    verify.send_signal(signal.SIGKILL)
    verify.wait(timeout=30)
    assert scratch in _scratch_databases(dbs)  # nothing could clean up after SIGKILL
    (dbs.cwd / "orion" / "piccolo_migrations" / "orion_905_slow.py").unlink()
    out = dbs.cli("verify", "orion").stdout
    assert f"verify: dropped {scratch}, a scratch database a killed verify left behind" in out
    assert scratch not in _scratch_databases(dbs)


def test_a_verify_interrupted_with_sigint_drops_its_own_scratch_database(tcp_dbs: Databases):
    dbs = tcp_dbs
    verify, scratch = _verify_until_its_scratch_database_exists(dbs)
    verify.send_signal(signal.SIGINT)
    _, err = verify.communicate(timeout=60)
    assert verify.returncode == 130, err
    assert scratch not in _scratch_databases(dbs)


def test_a_running_verify_keeps_its_scratch_database_while_another_verify_runs(tcp_dbs: Databases):
    dbs = tcp_dbs
    verify, scratch = _verify_until_its_scratch_database_exists(dbs)
    try:
        other = subprocess.run(
            [sys.executable, "-m", "dbmigrate", "verify", "rfq"],
            cwd=dbs.cwd,
            env=dbs.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 0, other.stderr
        assert scratch in _scratch_databases(dbs)  # its maker is alive: not abandoned
    finally:
        verify.send_signal(signal.SIGKILL)
        verify.wait(timeout=30)


def test_model_drift_names_each_change_column_by_column(project, dbs: Databases):
    tables = project / "orion" / "tables.py"
    text = tables.read_text()
    text = text.replace(
        '    name = Varchar(length=255, default=None, null=False)\n    type = Varchar(length=50, default="standard")',
        "    name = Varchar(length=255, default=None, null=True)\n    nickname = Varchar(length=40, null=True)\n"
        '    type = Varchar(length=50, default="standard")',
        1,
    )
    tables.write_text(text + '\n\nclass Desk(Table, tablename="desks"):\n    name = Varchar(length=100)\n')
    err = dbs.cli("verify", "orion", expect=1).stderr.splitlines()
    first = next(i for i, line in enumerate(err) if "orion/tables.py has changes no migration makes" in line)
    assert err[first + 1 : first + 4] == [
        "    desks: new table (name)",
        "    tenants.nickname: new column Varchar(length=40, null=True)",
        "    tenants.name: changed: null False -> True",
    ]


def test_each_problem_of_a_failing_verify_is_printed_once(project, dbs: Databases):
    write_sql_migration(
        project, "orion", "905_phone", "ALTER TABLE users ADD COLUMN phone text", "ALTER TABLE users DROP COLUMN phone"
    )
    write_sql_migration(
        project,
        "orion",
        "906_retype",
        "ALTER TABLE users ALTER COLUMN email TYPE text",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(255)",
    )
    result = dbs.cli("verify", "orion", expect=1)
    both = result.stdout + result.stderr
    for problem in ("the migrated database differs from schema/orion.sql", "906_retype: orion/piccolo_migrations"):
        assert both.count(problem) == 1, both
    assert result.stderr.splitlines()[-1] == "error: verify found 2 problem(s), each shown above (orion: drift, lint)"


def test_status_check_fails_on_tables_py_drift_and_a_plain_status_never_imports_piccolo(project, dbs: Databases):
    dbs.cli("migrate", "all")
    dbs.cli("status", "rfq", "--check")  # exits 0 (dbs.cli fails the test otherwise)
    tables = project / "rfq" / "tables.py"
    tables.write_text(
        tables.read_text() + '\n\nclass Desk(Table, tablename="desks"):\n    name = Varchar(length=100)\n'
    )
    err = dbs.cli("status", "rfq", "--check", expect=1).stderr
    assert err == (
        "error: rfq: rfq/tables.py has changes no migration makes (desks: new table (name)): "
        "run `make db-migrate-create NAME=... DB=rfq AUTO=1`\n"
    )
    probe = (
        "import sys\nfrom dbmigrate.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    )
    probe += "print('imported piccolo:', any(m.split('.')[0] == 'piccolo' for m in sys.modules))\n"
    for args, imported in ((["status", "rfq"], "False"), (["status", "rfq", "--check"], "True")):
        out = subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=project, env=dbs.env, capture_output=True, text=True, timeout=120
        ).stdout
        assert out.splitlines()[-1] == f"imported piccolo: {imported}", out
