"""CI never goes green without PgBouncer: the GitHub workflow's tests job and .ci/run install it (an
install that fails stops the run), and with ORION_REQUIRE_PGBOUNCER=1 a PgBouncer test that would
be skipped for want of pgbouncer fails instead."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from support import ROOT

ONE_PGBOUNCER_TEST = (
    "tests/server/test_pgbouncer.py::test_a_direct_connection_keeps_the_advisory_lock_and_makes_no_lease_table"
)


def _run_without_pgbouncer(**env: str) -> subprocess.CompletedProcess:
    import os

    environment = {k: v for k, v in os.environ.items() if k != "ORION_REQUIRE_PGBOUNCER"}
    environment.update(ORION_TEST_PGBOUNCER="/nonexistent/pgbouncer", **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-rs", ONE_PGBOUNCER_TEST],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_pgbouncer_a_pgbouncer_test_is_skipped_saying_why():
    result = _run_without_pgbouncer()
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "pgbouncer is not installed" in result.stdout


def test_in_ci_a_pgbouncer_test_without_pgbouncer_fails_the_run():
    result = _run_without_pgbouncer(ORION_REQUIRE_PGBOUNCER="1")
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout  # failed in its setup, before any fixture started a server
    assert "pgbouncer is not installed but ORION_REQUIRE_PGBOUNCER=1" in result.stdout


def test_the_workflows_tests_job_installs_pgbouncer_and_requires_it():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "migrations.yml").read_text())
    steps = workflow["jobs"]["tests"]["steps"]
    runs = [str(step.get("run", "")) for step in steps]
    install = next(i for i, run in enumerate(runs) if "apt-get install" in run)
    assert "pgbouncer" in runs[install] and "||" not in runs[install]
    test = next(i for i, run in enumerate(runs) if run.strip() == "make test")
    assert install < test
    assert steps[test]["env"]["ORION_REQUIRE_PGBOUNCER"] == "1"


def test_ci_run_stops_when_pgbouncer_cannot_be_installed_and_requires_it():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    assert "apt-get install -y -qq pgbouncer" in script
    install_line = next(line for line in script.splitlines() if "apt-get install" in line)
    assert "||" not in install_line and "|| echo" not in script
    lines = [line.strip() for line in script.splitlines()]
    assert lines.index("export ORION_REQUIRE_PGBOUNCER=1") < lines.index("make test")


@pytest.mark.pgbouncer
def test_the_pgbouncer_mark_runs_where_pgbouncer_is_installed():
    from pgbouncer_server import binary

    assert binary() is not None
