"""The tests of the apps' own schemas (orion, rfq, marketdata): the only tests that read the apps at
the top of the repository. Their `dbs` runs the CLI in a copy of the repository's apps, not of the
fixture project; each test migrates to the migration whose schema it checks, so a team adding a
migration to an app never breaks one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT, Databases, copy_project, fresh_databases, make_ready


@pytest.fixture
def dbs(server_url: str, tmp_path: Path) -> Iterator[Databases]:
    with fresh_databases(server_url) as databases:
        databases.cwd = make_ready(copy_project(tmp_path / "project", ROOT))
        yield databases
