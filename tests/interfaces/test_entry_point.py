"""`python -m dbmigrate` pauses the garbage collector only while its modules import (no server)."""

from __future__ import annotations

from support import fresh_python


def test_the_entry_point_freezes_what_its_imports_made_and_leaves_the_collector_running():
    out = fresh_python(
        """
        import gc, runpy, sys
        sys.argv = ["dbmigrate", "--help"]
        try:
            runpy.run_module("dbmigrate", run_name="__main__")
        except SystemExit:
            pass
        print(gc.isenabled(), gc.get_freeze_count() > 10000)
        """
    )
    assert out.splitlines()[-1] == "True True"
