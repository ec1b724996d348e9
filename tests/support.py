"""What the tests share besides fixtures: where the repository and the fixture project are, the
fixture project's migrations (written out, not read by the code under test), and the helpers of
dbmigrate.testing. Test modules import these from here; conftest.py turns them into fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dbmigrate.testing.helpers import (  # noqa: F401 - tests import these from here
    BOOKKEEPING_TABLES,
    Databases,
    catalog_of,
    copy_project,
    fresh_databases,
    run_sql,
    with_connection,
)

# The repository: its Makefile, README, scripts and the apps themselves (only tests/schemas/ may
# read the apps' migrations).
ROOT = Path(__file__).resolve().parent.parent
# The frozen project the framework's tests run in (tests/fixtures/project/README.md), and its
# migrations, written out here rather than read by the code under test.
FIXTURE_PROJECT = Path(__file__).resolve().parent / "fixtures" / "project"
FIXTURE_MIGRATIONS = {
    "orion": ["001_initial_schema", "002_audit_log_append_only"],
    "rfq": ["001_initial_schema", "002_rfqs_quotes_and_history"],
    "marketdata": ["001_initial_schema", "002_venues_instruments_snapshots"],
}


def make_ready(project: Path) -> Path:
    """`project` (a copy of the fixture project) made runnable with make: the Makefile and its
    scripts beside it, and the repository's .venv (pyproject.toml keeps its time, so make sees
    the .venv as installed and never reinstalls it)."""
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    os.utime(project / "pyproject.toml", (0, 0))  # make never reinstalls the shared .venv from a copy
    shutil.copytree(ROOT / "scripts", project / "scripts", dirs_exist_ok=True)
    if not (project / ".venv").exists():
        (project / ".venv").symlink_to(ROOT / ".venv")
    return project


def migration_ids(name: str) -> list[str]:
    """The fixture project's migrations of database `name`, in order."""
    return list(FIXTURE_MIGRATIONS[name])


PRIVATE_SERVER_PASSWORD = "s3cret-pw/with:odd@chars"  # the private server's (conftest.py)
