"""Running make as a user would, for the tests of the Makefile's variables and targets."""

from __future__ import annotations

import subprocess

from support import Databases


def make_env(dbs: Databases, env: dict[str, str] | None = None) -> dict[str, str]:
    """This test's environment, without what an outer make (make test) would pass down."""
    return {
        k: v
        for k, v in {**dbs.env, **(env or {})}.items()
        if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL") and not k.startswith("DBMIGRATE_")
    }


def make(dbs: Databases, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`make -s ARGS` in the test's copy of the fixture project, against this test's databases."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=dbs.cwd,
        env=make_env(dbs, env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The CLI's one error line of a failed make run (make adds its own `make: ***` line after it)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("make: ***")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
