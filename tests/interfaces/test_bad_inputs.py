"""Every bad input gets one clear line on stderr, a non-zero exit code, no traceback, no password,
and leaves the database as it was."""

from __future__ import annotations

import time

import pytest
from migration_files import write_python_migration, write_sql_migration
from private_server import PrivateServer
from support import PRIVATE_SERVER_PASSWORD, Databases, migration_ids

SECRETS = (PRIVATE_SERVER_PASSWORD, "s3cret", "odd@chars")


def one_line_error(result, *fragments: str) -> str:
    """The single stderr line of a failed run, checked for `fragments` and for secrets."""
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for secret in SECRETS:
        assert secret not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_malformed_url(tcp_dbs: Databases):
    tcp_dbs.extra_env["DATABASE_URL"] = "postgresql://orion:s3cret@127.0.0.1:port/orion"
    one_line_error(tcp_dbs.cli("migrate", "orion", expect=1), "DATABASE_URL is not a valid URL", "***")


def test_url_that_is_not_postgresql(tcp_dbs: Databases):
    tcp_dbs.extra_env["DATABASE_URL"] = "mysql://orion:s3cret@127.0.0.1/orion"
    one_line_error(tcp_dbs.cli("migrate", "orion", expect=1), "must start with postgresql://")


def test_unreachable_host(tcp_dbs: Databases):
    tcp_dbs.extra_env["DATABASE_URL"] = "postgresql://orion:s3cret@127.0.0.1:1/orion"
    one_line_error(tcp_dbs.cli("migrate", "orion", expect=1), "cannot reach PostgreSQL at 127.0.0.1:1/orion")


def test_wrong_password(tcp_dbs: Databases, private_server: PrivateServer):
    tcp_dbs.extra_env["DATABASE_URL"] = tcp_dbs.url("orion").replace(
        private_server.url().split("@")[0], "postgresql://orion:s3cret-but-wrong"
    )
    one_line_error(tcp_dbs.cli("migrate", "orion", expect=1), "refused the login", "check the user and password")
    assert tcp_dbs.applied("orion") == []


def test_unknown_database_name(dbs: Databases):
    one_line_error(dbs.cli("status", "trades", expect=2), "unknown database 'trades'", "orion, rfq, marketdata")


def test_configured_database_that_does_not_exist(tcp_dbs: Databases):
    tcp_dbs.extra_env["RFQ_DATABASE_URL"] = tcp_dbs.url("rfq").replace("_orion_rfq", "_missing")
    one_line_error(tcp_dbs.cli("migrate", "rfq", expect=1), "does not exist", "make db-create")


@pytest.mark.parametrize("name", ["two words", "a/b", "../../etc/x", "it's", '"q"', "x;DROP TABLE users", "1st"])
def test_unusable_migration_names(project, dbs: Databases, name: str):
    before = sorted(project.glob("*/piccolo_migrations/*"))
    one_line_error(dbs.cli("create", name, "orion", expect=2), "is not usable")
    assert sorted(project.glob("*/piccolo_migrations/*")) == before


def test_two_migration_files_with_the_same_id(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_twin", "SELECT 1", "SELECT 1")
    twin = project / "orion" / "piccolo_migrations" / "orion_905_twin_copy.py"
    twin.write_text((project / "orion" / "piccolo_migrations" / "orion_905_twin.py").read_text())
    one_line_error(dbs.cli("migrate", "orion", expect=1), "two migrations of orion have the ID '905_twin'", "renumber")
    assert dbs.applied("orion") == []


def test_a_migration_file_that_does_not_import_names_file_and_line(project, dbs: Databases):
    path = write_python_migration(project, "orion", "905_broken", "return MigrationManager(migration_id=ID)")
    path.write_text(path.read_text().replace("import os\n", "import os\nfrom nowhere import nothing\n"))
    line = one_line_error(
        dbs.cli("migrate", "orion", expect=1), "orion/piccolo_migrations/orion_905_broken.py does not load", "line 2"
    )
    assert "ModuleNotFoundError" in line
    assert dbs.applied("orion") == []  # every planned migration is loaded before the first runs: nothing ran


def test_a_migration_file_with_a_syntax_error(project, dbs: Databases):
    path = write_sql_migration(project, "orion", "905_syntax", "SELECT 1", "SELECT 1")
    path.write_text(path.read_text() + "\ndef oops(:\n")
    one_line_error(dbs.cli("migrate", "orion", expect=1), "orion_905_syntax.py does not load", "SyntaxError")


def test_down_with_more_steps_than_applied_is_refused_and_reverts_nothing(dbs: Databases):
    dbs.cli("migrate", "marketdata")
    applied = dbs.applied("marketdata")
    one_line_error(
        dbs.cli("down", "marketdata", "--steps", "9", expect=2), "STEPS=9", f"only {len(applied)} migration(s)"
    )
    assert dbs.applied("marketdata") == applied


def test_down_of_an_irreversible_migration(project, dbs: Databases):
    write_sql_migration(project, "orion", "905_one_way", "CREATE TABLE one_way (id int)", None)
    dbs.cli("migrate", "orion")
    one_line_error(dbs.cli("down", "orion", expect=1), "905_one_way cannot be rolled back")
    assert "905_one_way" in dbs.applied("orion")


def test_unknown_orion_env(dbs: Databases):
    dbs.extra_env["ORION_ENV"] = "prod"
    one_line_error(dbs.cli("status", expect=1), "unknown ORION_ENV 'prod'", "production")


def test_env_file_line_that_does_not_parse(project, dbs: Databases):
    (project / ".env").write_text("ORION_MIGRATE_LOCK_WAIT=5\nthis line is not KEY=value 'unterminated\n")
    one_line_error(dbs.cli("status", expect=1), ".env line 2 does not parse")


def test_bad_timeout_settings(dbs: Databases):
    dbs.extra_env["ORION_LOCK_TIMEOUT"] = "soon"
    one_line_error(dbs.cli("migrate", "orion", expect=1), "ORION_LOCK_TIMEOUT='soon' is not a duration")
    assert dbs.applied("orion") == []


def test_a_server_that_stops_mid_run(tmp_path, project):
    """Its own private server, since the test stops it."""
    import shutil
    import tempfile
    from pathlib import Path

    from private_server import start_private_server

    from dbmigrate.testing.helpers import fresh_databases

    base = Path(tempfile.mkdtemp(prefix="orion-test-stop-"))
    server = start_private_server(base, PRIVATE_SERVER_PASSWORD)
    try:
        with fresh_databases(server.url()) as dbs:
            dbs.cwd = project
            write_python_migration(
                project,
                "orion",
                "905_slow",
                """
manager = MigrationManager(migration_id=ID, app_name="orion")

async def slow():
    await engine_finder().run_ddl("CREATE TABLE slow_table (id int)")
    await engine_finder().run_ddl("SELECT pg_sleep(30)")

manager.add_raw(slow)
return manager
""",
            )
            runner = dbs.popen("migrate", "orion")
            deadline = time.monotonic() + 60
            while "pg_sleep" not in server.psql("SELECT query FROM pg_stat_activity"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            server.stop("immediate")
            out, err = runner.communicate(timeout=60)
            assert runner.returncode == 1
            assert "Traceback" not in err and PRIVATE_SERVER_PASSWORD not in out + err
            assert len(err.strip().splitlines()) == 1
            assert "905_slow" in err and "run the command again when the server is back" in err
            server.start()
            (project / "orion" / "piccolo_migrations" / "orion_905_slow.py").unlink()
            assert dbs.applied("orion") == migration_ids("orion")  # the applied ones survived
            dbs.cli("migrate", "orion")
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def test_status_over_tcp_shows_urls_without_the_password(tcp_dbs: Databases):
    tcp_dbs.cli("migrate", "orion")
    out = tcp_dbs.cli("status").stdout + tcp_dbs.cli("status", "--format", "json").stdout
    assert "postgresql://orion:***@127.0.0.1:" in out
    for secret in SECRETS:
        assert secret not in out


def test_a_url_the_parser_rejects_never_shows_its_password(dbs: Databases):
    dbs.extra_env["DATABASE_URL"] = "postgresql://orion:hunter2/x@127.0.0.1/orion"
    line = one_line_error(dbs.cli("status", "orion", expect=1), "DATABASE_URL")
    assert "hunter2" not in line


def test_only_one_database_configured_works_for_it_and_says_what_is_missing_for_others(dbs: Databases):
    dbs.extra_env.update(DATABASE_URL="", MARKETDATA_DATABASE_URL="")
    dbs.cli("migrate", "rfq")
    assert dbs.applied("rfq") == migration_ids("rfq")
    one_line_error(dbs.cli("migrate", "orion", expect=1), "DATABASE_URL is not set but RFQ_DATABASE_URL is")
