"""`make db-shell DB=x`: psql on that database; piped SQL runs and exits, an error exits non-zero."""

from __future__ import annotations

import subprocess
import sys

from support import Databases


def shell(dbs: Databases, database: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dbmigrate", "shell", database],
        cwd=dbs.cwd,
        env=dbs.env,
        input=sql,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_piped_sql_runs_on_the_chosen_database_and_exits(dbs: Databases):
    result = shell(dbs, "rfq", "SELECT current_database() AS db \\gset\n\\echo connected to :db\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"connected to {dbs.prefix}_orion_rfq"


def test_a_failing_statement_stops_the_script_with_a_non_zero_exit(dbs: Databases):
    result = shell(dbs, "orion", "SELECT 1/0;\nCREATE TABLE never_created (id int);\n")
    assert result.returncode != 0
    assert "division by zero" in result.stderr and "Traceback" not in result.stderr
    assert dbs.sql("orion", "SELECT to_regclass('never_created') IS NULL AS absent")[0]["absent"]


def test_an_unknown_database_is_a_one_line_error(dbs: Databases):
    result = shell(dbs, "nope", "SELECT 1;")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown database 'nope'" in result.stderr


def test_make_db_shell_passes_db_and_stdin_through(dbs: Databases):
    result = subprocess.run(
        ["make", "-s", "db-shell", "DB=marketdata"],
        cwd=dbs.cwd,
        env=dbs.env,
        input="SELECT current_database() AS db \\gset\n\\echo :db\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{dbs.prefix}_orion_marketdata"
