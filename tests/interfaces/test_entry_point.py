"""`python -m dbmigrate` pauses the garbage collector only while its modules import (no server)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_entry_point_freezes_what_its_imports_made_and_leaves_the_collector_running():
    code = """
        import gc, runpy, sys
        sys.argv = ["dbmigrate", "--help"]
        try:
            runpy.run_module("dbmigrate", run_name="__main__")
        except SystemExit:
            pass
        print(gc.isenabled(), gc.get_freeze_count() > 10000)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True True"
