"""`make db-migrate-renumber DB= ID=`: two branches both wrote 003; the one not applied yet moves
after the last migration (file, sibling .sql files, ID), and nothing applied or merged is touched."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from migration_files import write_sql_migration
from support import Databases

FOLDER = Path("orion") / "piccolo_migrations"


def write_sql_files_migration(project: Path, migration_id: str, up: str, down: str) -> Path:
    """A migration whose SQL lives in sibling orion_<id>.up.sql and .down.sql files."""
    path = project / FOLDER / f"orion_{migration_id}.py"
    path.write_text(
        "from dbmigrate.sql import SQLMigration\n\n"
        f'ID = "{migration_id}"\nVERSION = "1.38.0"\nDESCRIPTION = ""\n\n\n'
        "async def forwards():\n"
        '    manager = SQLMigration(migration_id=ID, app_name="orion", description=DESCRIPTION)\n'
        "    manager.sql_files(__file__)\n"
        "    return manager\n"
    )
    path.with_name(f"orion_{migration_id}.up.sql").write_text(up)
    path.with_name(f"orion_{migration_id}.down.sql").write_text(down)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=project, check=True, capture_output=True
    )


def test_the_unapplied_one_of_two_003s_moves_after_the_last_and_applies(project, dbs: Databases):
    desks = write_sql_migration(project, "orion", "003_add_desks", "CREATE TABLE desks (id int)", "DROP TABLE desks")
    dbs.cli("migrate", "orion")  # main's 003, applied; then this branch's 003 arrives beside it
    write_sql_files_migration(project, "003_add_phones", "CREATE TABLE phones (id int);\n", "DROP TABLE phones;\n")
    assert "have the number 3" in dbs.cli("migrate", "orion", expect=1).stderr  # refused until renumbered
    before = sha256(desks)

    out = dbs.cli("renumber", "003_add_phones", "orion").stdout
    assert out.strip() == (
        f"orion: renumbered 003_add_phones to 004_add_phones: {FOLDER / 'orion_004_add_phones.py'} "
        f"(was {FOLDER / 'orion_003_add_phones.py'}), with orion_004_add_phones.up.sql, orion_004_add_phones.down.sql"
    )
    names = sorted(p.name for p in (project / FOLDER).glob("orion_00[34]_*"))
    assert names == [
        "orion_003_add_desks.py",
        "orion_004_add_phones.down.sql",
        "orion_004_add_phones.py",
        "orion_004_add_phones.up.sql",
    ]
    assert 'ID = "004_add_phones"' in (project / FOLDER / "orion_004_add_phones.py").read_text()
    assert sha256(desks) == before  # the applied one: not a byte changed

    dbs.cli("migrate", "orion")
    assert dbs.applied("orion")[-2:] == ["003_add_desks", "004_add_phones"]
    assert "phones" in dbs.tables("orion")
    assert dbs.cli("status", "orion", "--check").returncode == 0  # nothing modified, missing or out of order


def test_renumber_refuses_an_applied_migration_an_ambiguous_or_unknown_id_and_touches_nothing(project, dbs: Databases):
    write_sql_migration(project, "orion", "003_add_desks", "CREATE TABLE desks (id int)", "DROP TABLE desks")
    dbs.cli("migrate", "orion")
    write_sql_migration(project, "orion", "003_add_phones", "CREATE TABLE phones (id int)", "DROP TABLE phones")
    files = {p.name: p.read_bytes() for p in (project / FOLDER).iterdir() if p.is_file()}

    applied = dbs.cli("renumber", "003_add_desks", "orion", expect=1).stderr
    assert applied.startswith("error: orion: 003_add_desks is applied to ")
    assert applied.rstrip().endswith("roll it back first (make db-migrate-down DB=orion), renumber it, then migrate")
    two = dbs.cli("renumber", "003", "orion", expect=2).stderr
    assert two == "error: orion: ID=003 names 2 migrations (003_add_desks, 003_add_phones): give the whole ID\n"
    unknown = dbs.cli("renumber", "042", "orion", expect=2).stderr
    assert unknown.startswith("error: orion: no migration '042'")
    assert {p.name: p.read_bytes() for p in (project / FOLDER).iterdir() if p.is_file()} == files


def test_renumber_refuses_a_migration_already_on_the_base_branch(project, dbs: Databases):
    write_sql_migration(project, "orion", "003_add_desks", "CREATE TABLE desks (id int)", "DROP TABLE desks")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "main, with their 003")
    git(project, "checkout", "-q", "-b", "mine")
    write_sql_migration(project, "orion", "003_add_phones", "CREATE TABLE phones (id int)", "DROP TABLE phones")

    err = dbs.cli("renumber", "003_add_desks", "orion", expect=1).stderr  # applied nowhere here, but merged
    assert "003_add_desks (orion/piccolo_migrations/orion_003_add_desks.py) is on main" in err
    assert (project / FOLDER / "orion_003_add_desks.py").exists()
    make = subprocess.run(
        ["make", "-s", "db-migrate-renumber", "DB=orion", "ID=003_add_phones"],
        cwd=project,
        env=dbs.env,
        capture_output=True,
        text=True,
    )
    assert make.returncode == 0, make.stderr
    assert "renumbered 003_add_phones to 004_add_phones" in make.stdout
