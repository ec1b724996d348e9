"""Unit test (no server): compacting a generated migration (scaffold.compact) leaves out only what
Piccolo assumes anyway: every column of the real orion 001, compacted, has the same parameters."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from support import FIXTURE_PROJECT

from dbmigrate.commands.scaffold import compact, formatted

ORION_001 = FIXTURE_PROJECT / "orion" / "piccolo_migrations" / "orion_001_initial_schema.py"


def _columns(path: Path, name: str) -> dict[tuple[str, str], dict]:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manager = asyncio.run(module.forwards())
    found = {}
    for added in manager.add_columns.add_columns:
        params = dict(added.column._meta.params)
        if "references" in params:  # a table class defined in each file: compare by name
            params["references"] = params["references"]._meta.tablename
        found[(added.tablename, added.column._meta.name)] = {k: repr(v) for k, v in params.items()}
    return found


def test_compacting_the_initial_schema_keeps_every_columns_parameters(tmp_path: Path):
    original = ORION_001.read_text()
    compacted = formatted(compact(original), FIXTURE_PROJECT)
    copy = tmp_path / "orion_001_compact.py"
    copy.write_text(compacted)
    assert len(compacted.splitlines()) < 0.6 * len(original.splitlines())
    assert _columns(copy, "compacted_001") == _columns(ORION_001, "original_001")
