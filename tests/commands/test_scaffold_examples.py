"""`make db-migrate-create` writes skeletons that teach: their commented examples are the safe forms
(a constraint added NOT VALID and validated by a later migration; an index built CONCURRENTLY in a
TRANSACTION=0 migration), and uncommented as written they pass db-verify, lint included."""

from __future__ import annotations

import re
from pathlib import Path

from support import Databases

FOLDER = Path("orion") / "piccolo_migrations"


def created(project: Path, name: str) -> Path:
    (path,) = (project / FOLDER).glob(f"orion_*_{name}.py")
    return path


def uncomment(path: Path, *examples: str) -> str:
    """Turn the skeleton's example lines holding any of `examples` into SQL; return the file's text."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("--   ") and any(example in line for example in examples):
            lines[i] = line[len("--   ") :]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def examples(path: Path) -> list[str]:
    return [line[len("--   ") :] for line in path.read_text().splitlines() if line.startswith("--   ")]


def test_the_non_transactional_skeleton_shows_an_index_built_concurrently_and_no_add_column(project, dbs: Databases):
    dbs.cli("create", "index_phone", "orion", "--transaction", "0")
    shown = examples(created(project, "index_phone"))
    assert "CREATE INDEX CONCURRENTLY idx_users_phone ON users (phone);" in shown
    assert "DROP INDEX CONCURRENTLY idx_users_phone;" in shown
    assert not [e for e in shown if "ADD COLUMN" in e or re.match(r"CREATE INDEX (?!CONCURRENTLY)", e)]


def test_the_transactional_skeleton_adds_a_constraint_not_valid_and_validates_it_later(project, dbs: Databases):
    dbs.cli("create", "add_phone", "orion")
    shown = examples(created(project, "add_phone"))
    assert "ALTER TABLE users ADD CONSTRAINT users_phone_not_empty CHECK (phone <> '') NOT VALID;" in shown
    assert "ALTER TABLE users VALIDATE CONSTRAINT users_phone_not_empty;" in shown
    assert not [e for e in shown if e.startswith("CREATE INDEX")]


def test_the_skeletons_examples_uncommented_pass_verify_lint_included(project, dbs: Databases):
    dbs.cli("create", "add_phone", "orion")
    uncomment(created(project, "add_phone"), "ADD COLUMN phone", "NOT VALID", "DROP CONSTRAINT", "DROP COLUMN phone")
    dbs.cli("create", "validate_phone", "orion")
    validate = created(project, "validate_phone")
    uncomment(validate, "VALIDATE CONSTRAINT")
    undo = "ALTER TABLE users DROP CONSTRAINT users_phone_not_empty;\n"
    undo += "ALTER TABLE users ADD CONSTRAINT users_phone_not_empty CHECK (phone <> '') NOT VALID;\n"
    validate.write_text(validate.read_text().replace('BACKWARDS_SQL = """\n', f'BACKWARDS_SQL = """\n{undo}'))
    dbs.cli("create", "index_phone", "orion", "--transaction", "0")
    uncomment(created(project, "index_phone"), "INDEX CONCURRENTLY idx_users_phone")
    dbs.cli("schema-dump", "orion")
    out = dbs.cli("verify", "orion").stdout
    assert "orion: ok   lint: squawk finds nothing in 5 migration(s)" in out
    assert "orion: ok   migrate up, down, up: 5 migration(s) applied from empty" in out
