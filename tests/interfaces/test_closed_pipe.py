"""A closed pipe (`make db-migrate-all | head -3`) never stops a migration; printing commands
(status) still end quietly when their reader goes."""

from __future__ import annotations

import subprocess
import sys

from hostile_make import make_env
from support import Databases, migration_ids

from dbmigrate.core.config import DATABASES


def run_with_closed_stdout(dbs: Databases, *args: str) -> tuple[int, str]:
    """Run the CLI with its stdout a pipe whose reader has already gone."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dbmigrate", *args],
        cwd=dbs.cwd,
        env=dbs.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # the only reader: every write of the child now fails with EPIPE
    err = process.stderr.read()
    return process.wait(timeout=120), err


def test_migrate_all_finishes_when_its_reader_goes(dbs: Databases):
    code, err = run_with_closed_stdout(dbs, "migrate", "all")
    assert code == 0, err
    assert err == ""
    for name in DATABASES:
        assert dbs.applied(name) == migration_ids(name)


def test_make_migrate_all_piped_into_head_migrates_everything(dbs: Databases):
    result = subprocess.run(
        ["sh", "-c", "make -s --no-print-directory db-migrate-all | head -c 0"],
        cwd=dbs.cwd,
        env=make_env(dbs),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    for name in DATABASES:
        assert dbs.applied(name) == migration_ids(name)


def test_reset_and_seed_finish_when_their_reader_goes(dbs: Databases):
    code, err = run_with_closed_stdout(dbs, "reset")
    assert code == 0, err
    assert dbs.sql("orion", "SELECT count(*) AS n FROM tenants")[0]["n"] == 3  # the fixture project's 3 tenants


def test_status_ends_quietly_when_its_reader_goes(dbs: Databases):
    dbs.cli("migrate", "all")
    code, err = run_with_closed_stdout(dbs, "status")
    assert err == ""  # no traceback, no BrokenPipeError
    assert code in (0, -13)  # done, or ended by SIGPIPE as Unix tools are
