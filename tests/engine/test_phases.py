"""Unit tests (no server): deploy phases as files declare them, as PHASE=pre plans them, and why a
post-deploy migration waiting behind later pre-deploy ones is not out of order."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbmigrate.core.config import DATABASES
from dbmigrate.core.errors import UserError
from dbmigrate.engine.files import MigrationFile, discover
from dbmigrate.engine.phases import declared_phase
from dbmigrate.engine.recorder import AppliedMigration
from dbmigrate.engine.state import MigrationState, forwards_plan, left_for_later

ROOT = Path("/project")


def files(*specs: str) -> list[MigrationFile]:
    """`002_b:post` is a post-deploy migration; `001_a` a pre-deploy one."""
    made = []
    for spec in specs:
        migration_id, _, phase = spec.partition(":")
        path = ROOT / "orion" / "piccolo_migrations" / f"orion_{migration_id}.py"
        made.append(MigrationFile("orion", migration_id, path, f"sum-{migration_id}", phase or "pre"))
    return made


def applied(*ids: str) -> dict[str, AppliedMigration]:
    return {i: AppliedMigration(i, None, None, n, f"sum-{i}", 1, "me", False) for n, i in enumerate(ids, start=1)}


def test_a_file_declares_its_phase_in_a_line_of_its_own_and_nothing_else_is_accepted():
    assert declared_phase('ID = "001_a"\n') == "pre"
    assert declared_phase('ID = "001_a"\nPHASE = "post"\n') == "post"
    assert declared_phase("PHASE: str = 'pre'  # the default\n") == "pre"
    assert declared_phase('x = 1\n    PHASE = "post"\n') == "pre"  # not at module level: not a declaration
    for bad in ('PHASE = "later"\n', "PHASE = POST\n", 'PHASE = "Post"\n'):
        with pytest.raises(ValueError, match="is not a deploy phase"):
            declared_phase(bad)


def test_discover_reads_the_phase_as_text_and_names_the_file_with_a_bad_one(tmp_path: Path):
    folder = tmp_path / "orion" / "piccolo_migrations"
    folder.mkdir(parents=True)
    (folder / "orion_001_a.py").write_text('ID = "001_a"\n')
    (folder / "orion_002_b.py").write_text('ID = "002_b"\nPHASE = "post"\nraise SystemExit("never imported")\n')
    assert [(m.id, m.phase) for m in discover(tmp_path, DATABASES["orion"])] == [("001_a", "pre"), ("002_b", "post")]
    (folder / "orion_003_c.py").write_text('ID = "003_c"\nPHASE = "afterwards"\n')
    with pytest.raises(UserError, match=r"orion_003_c.py: PHASE = \"afterwards\" is not a deploy phase"):
        discover(tmp_path, DATABASES["orion"])


def test_phase_pre_plans_the_pre_deploy_migrations_and_leaves_the_post_deploy_ones():
    state = MigrationState("orion", files("001_a", "002_b:post", "003_c", "004_d:post"), applied("001_a"), {})
    assert [m.id for m in forwards_plan(state, phase="pre")] == ["003_c"]
    assert [m.id for m in left_for_later(forwards_plan(state), "pre")] == ["002_b", "004_d"]
    assert [m.id for m in forwards_plan(state)] == ["002_b", "003_c", "004_d"]
    assert [m.id for m in forwards_plan(state, phase="post")] == ["002_b", "003_c", "004_d"]
    assert [m.id for m in forwards_plan(state, to="003", phase="pre")] == ["003_c"]


def test_a_post_deploy_migration_behind_later_pre_deploy_ones_is_not_out_of_order_but_a_merged_one_is():
    after_pre_phase = MigrationState("orion", files("001_a", "002_b:post", "003_c"), applied("001_a", "003_c"), {})
    assert after_pre_phase.out_of_order == []
    assert [m.id for m in forwards_plan(after_pre_phase)] == ["002_b"]
    # a pre-deploy migration behind an applied one is a merge, whatever phase the later one has
    merged = MigrationState("orion", files("001_a", "002_b", "003_c:post"), applied("001_a", "003_c"), {})
    assert [m.id for m in merged.out_of_order] == ["002_b"]
    with pytest.raises(UserError, match="002_b numbered before"):
        forwards_plan(merged)
    # a post-deploy one behind an applied post-deploy one was not left by PHASE=pre either
    behind_post = MigrationState("orion", files("001_a", "002_b:post", "003_c:post"), applied("001_a", "003_c"), {})
    assert [m.id for m in behind_post.out_of_order] == ["002_b"]
