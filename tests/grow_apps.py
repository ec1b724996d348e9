"""Prove that adding valid migrations to the apps breaks no test: copy the repository, add three
migrations to each app (a column, a CHECK ... NOT VALID, an index built CONCURRENTLY in a
non-transactional migration), regenerate the schema snapshots as a developer would, and run
`make test` and `make db-verify` in the copy.

    .venv/bin/python tests/grow_apps.py        # exits with make's status (by hand: it runs the whole suite again)

The framework's tests run in the frozen fixture project, so they cannot notice; tests/schemas/
reads the apps and checks each schema at the migration it is about. This script is the evidence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"orion": "users", "rfq": "rfqs", "marketdata": "venues"}

MIGRATION = '''"""{description} (added by tests/grow_apps.py)"""

from dbmigrate.sql import SQLMigration

ID = "{migration_id}"
VERSION = "1.38.0"
DESCRIPTION = "{description}"


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="{app}", description=DESCRIPTION{options})
    manager.sql(forwards={forwards!r}, backwards={backwards!r})
    return manager
'''


def extra_migrations(app: str, table: str) -> list[tuple[str, str, str, bool]]:
    """(name, forwards, backwards, transactional) of the three migrations added to `app`."""
    return [
        (
            "add_grown_note",
            f"ALTER TABLE {table} ADD COLUMN grown_note text;",
            f"ALTER TABLE {table} DROP COLUMN grown_note;",
            True,
        ),
        (
            "check_grown_note",
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_grown_note_length CHECK (length(grown_note) < 500) NOT VALID;",
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_grown_note_length;",
            True,
        ),
        (
            "index_grown_note",
            f"CREATE INDEX CONCURRENTLY idx_{table}_grown_note ON {table} (grown_note);",
            f"DROP INDEX CONCURRENTLY idx_{table}_grown_note;",
            False,
        ),
    ]


def copy_repository(destination: Path) -> None:
    """The tracked files, as a fresh clone has them. The copy makes its own .venv, as a clone does
    (pip's cache makes that quick): its editable install must point at the copy's packages, not
    at this checkout's."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, target = ROOT / name, destination / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def grow(project: Path) -> list[str]:
    written = []
    for app, table in TABLES.items():
        folder = project / app / "piccolo_migrations"
        numbers = [int(p.name.split("_")[1]) for p in folder.glob(f"{app}_[0-9]*.py")]
        for offset, (name, forwards, backwards, transactional) in enumerate(extra_migrations(app, table), start=1):
            migration_id = f"{max(numbers) + offset:03d}_{name}"
            path = folder / f"{app}_{migration_id}.py"
            path.write_text(
                MIGRATION.format(
                    description=name.replace("_", " "),
                    migration_id=migration_id,
                    app=app,
                    options="" if transactional else ", wrap_in_transaction=False",
                    forwards=forwards,
                    backwards=backwards,
                )
            )
            written.append(str(path.relative_to(project)))
    return written


def _remove_test_cluster(pgdata: Path) -> None:
    """The copy's test cluster (in /dev/shm, named after the copy's data folder), stopped and gone."""
    from dbmigrate.core.releases import DEFAULT_MAJOR
    from dbmigrate.server import embedded

    cluster = embedded.data_dir_for_tests(pgdata, int(os.environ.get("ORION_PG_VERSION") or DEFAULT_MAJOR))
    embedded.stop(cluster)
    shutil.rmtree(cluster.parent, ignore_errors=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="orion-grown-") as folder:
        project = Path(folder)
        copy_repository(project)
        print(f"grow_apps: added {', '.join(grow(project))}", flush=True)
        # The copy's own embedded server, in its default place (.pgdata in the copy), as a clone has it.
        unset = ("ORION_PROJECT_ROOT", "ORION_PGDATA")
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k not in unset}
        steps = [["make", "-s", "db-schema-dump"], ["make", "-s", "db-verify"], ["make", "test"]]
        try:
            for step in steps:
                print(f"grow_apps: {' '.join(step)}", flush=True)
                status = subprocess.run(step, cwd=project, env=env).returncode
                if status != 0:
                    print(f"grow_apps: {' '.join(step)} failed (exit {status}) with three extra migrations per app")
                    return status
        finally:
            subprocess.run(["make", "-s", "db-stop"], cwd=project, env=env, capture_output=True)
            _remove_test_cluster(project / ".pgdata")
    print("grow_apps: with three extra migrations in each app, make db-verify and make test pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
