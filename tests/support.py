"""What the tests share besides fixtures: where the repository and the fixture project are, the
fixture project's migrations (written out, not read by the code under test), and the helpers of
dbmigrate.testing. Test modules import these from here; conftest.py turns them into fixtures."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
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
    scripts beside it, and the repository's .venv. The copy's pyproject.toml is dated 1970, so make
    always sees the shared .venv as installed and never reinstalls it from the copy."""
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    os.utime(project / "pyproject.toml", (0, 0))
    shutil.copytree(ROOT / "scripts", project / "scripts", dirs_exist_ok=True)
    if not (project / ".venv").exists():
        (project / ".venv").symlink_to(ROOT / ".venv")
    return project


def migration_ids(name: str) -> list[str]:
    """The fixture project's migrations of database `name`, in order."""
    return list(FIXTURE_MIGRATIONS[name])


PRIVATE_SERVER_PASSWORD = "s3cret-pw/with:odd@chars"  # the private server's (conftest.py)


# A test runner may ignore SIGINT, and its children inherit that; a shell's command never does.
SIGINT_AS_A_TERMINAL_HAS_IT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def interrupted(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run `command` (pytest) in `cwd` until its test has written the file `started`, then press
    Ctrl-C (SIGINT to the process group, as a terminal does); its output, once it has ended."""
    started = cwd / "started"
    started.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-c", SIGINT_AS_A_TERMINAL_HAS_IT, *command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), process.communicate()[0] if process.poll() is not None else "the test never started"
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0, out
    assert "KeyboardInterrupt" in out, out
    return out


def fresh_python(code: str, cwd: Path = ROOT) -> str:
    """What `code` (dedented) prints, run in a fresh interpreter with only the repository on its
    path, so that no module another test imported hides an import; it must exit 0."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def hold_table_lock(dbs: Databases, table: str, database: str = "orion") -> subprocess.Popen:
    """Another session holding ACCESS EXCLUSIVE on `table` until killed; returns once it holds it."""
    program = (
        "import asyncio, asyncpg\n"
        "async def main():\n"
        f"    conn = await asyncpg.connect({dbs.url(database)!r})\n"
        "    await conn.execute('BEGIN')\n"
        f"    await conn.execute('LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE')\n"
        "    print('locked', flush=True)\n"
        "    await asyncio.sleep(120)\n"
        "asyncio.run(main())\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder
