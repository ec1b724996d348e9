"""Long histories for tests: as many migrations as asked, numbered past 999, written in dbmigrate's
own format and as a dbmate folder to import.

The history is generated, not committed: `steps(count)` is deterministic and cheap to apply. Every
tenth step creates a small table; the steps between change the newest table (a column, an index,
a check constraint, a comment, a row of data, a view), and every 50th is a `CREATE INDEX
CONCURRENTLY` that must run outside a transaction. Every step has a down that undoes it exactly,
so a long history can be walked up, down and up again. The schema stays small (a table per ten
steps), so reading its catalog stays cheap however long the history.

`write_native(steps, folder, app, first_number)` writes `<app>_<number>_<name>.py` files as
`make db-migrate-create` numbers them (`003_`, ..., `999_`, `1000_`); `write_dbmate(steps, folder)`
writes `<version>_<name>.sql` files with `-- migrate:up` / `-- migrate:down` sections.
`python tests/histories/long.py DIR COUNT` writes both into DIR, to look at.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    name: str
    up: str
    down: str
    concurrent: bool = False  # must run outside a transaction


def steps(count: int, start: int = 0) -> list[Step]:
    """`count` steps, the `start`-th first (so two calls can continue one history)."""
    return [_step(i) for i in range(start, start + count)]


def _step(i: int) -> Step:
    table = f"lh_t{i // 10}"
    kind = i % 10
    if kind == 0:
        return Step(
            f"create {table}",
            f"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text NOT NULL);\n",
            f"DROP TABLE {table};\n",
        )
    column = f"c{kind}"
    if i % 50 == 49:  # kind 9: a concurrent index, alone in its migration
        return Step(
            f"index {table} {column} concurrently",
            f"CREATE INDEX CONCURRENTLY {table}_label_idx ON {table} (label);\n",
            f"DROP INDEX CONCURRENTLY {table}_label_idx;\n",
            concurrent=True,
        )
    if kind in (1, 2, 3):
        return Step(
            f"add {table} {column}",
            f"ALTER TABLE {table} ADD COLUMN {column} integer NOT NULL DEFAULT {kind};\n",
            f"ALTER TABLE {table} DROP COLUMN {column};\n",
        )
    if kind == 4:
        return Step(
            f"index {table} c1",
            f"CREATE INDEX {table}_c1_idx ON {table} (c1);\n",
            f"DROP INDEX {table}_c1_idx;\n",
        )
    if kind == 5:
        return Step(
            f"check {table} c2",
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_c2_check CHECK (c2 >= 0);\n",
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_c2_check;\n",
        )
    if kind == 6:
        return Step(
            f"comment {table}",
            f"COMMENT ON TABLE {table} IS 'step {i}; generated';\n",
            f"COMMENT ON TABLE {table} IS NULL;\n",
        )
    if kind == 7:
        return Step(
            f"seed {table}",
            f"INSERT INTO {table} (label) VALUES ('row of step {i}');\n",
            f"DELETE FROM {table} WHERE label = 'row of step {i}';\n",
        )
    if kind == 8:
        return Step(
            f"view {table}",
            f"CREATE VIEW {table}_v AS SELECT id, label FROM {table};\n",
            f"DROP VIEW {table}_v;\n",
        )
    return Step(
        f"default {table} c3",
        f"ALTER TABLE {table} ALTER COLUMN c3 SET DEFAULT {i};\n",
        f"ALTER TABLE {table} ALTER COLUMN c3 SET DEFAULT 3;\n",
    )


def file_name(step: Step) -> str:
    return step.name.replace(" ", "_")


def migration_id(number: int, step: Step) -> str:
    """The ID dbmigrate gives the `number`-th migration: at least three digits (`003_`, `1000_`)."""
    return f"{number:03d}_{file_name(step)}"


NATIVE = '''"""{name}"""

from dbmigrate.sql import SQLMigration

ID = "{migration_id}"
VERSION = "1.38.0"
DESCRIPTION = "{name}"
SQUAWK_EXEMPT = {{
    "require-concurrent-index-creation": "a generated test history: its tables are empty",
    "constraint-missing-not-valid": "a generated test history: its tables are empty",
}}


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="{app}", description=DESCRIPTION{transaction})
    manager.sql(forwards={up!r}, backwards={down!r})
    return manager
'''


def write_native(history: list[Step], folder: Path, app: str, first_number: int) -> list[str]:
    """`history` as dbmigrate migration files numbered from `first_number`; returns their IDs."""
    ids = []
    for number, step in enumerate(history, start=first_number):
        ids.append(migration_id(number, step))
        (folder / f"{app}_{ids[-1]}.py").write_text(
            NATIVE.format(
                name=step.name,
                migration_id=ids[-1],
                app=app,
                transaction=", wrap_in_transaction=False" if step.concurrent else "",
                up=step.up,
                down=step.down,
            )
        )
    return ids


def write_dbmate(history: list[Step], folder: Path) -> list[str]:
    """`history` as a dbmate folder (created); returns the file names in dbmate's order."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number, step in enumerate(history, start=1):
        option = " transaction:false" if step.concurrent else ""
        names.append(f"2024{number:010d}_{file_name(step)}.sql")
        (folder / names[-1]).write_text(f"-- migrate:up{option}\n{step.up}\n-- migrate:down{option}\n{step.down}")
    return names


if __name__ == "__main__":
    out, count = Path(sys.argv[1]), int(sys.argv[2])
    (out / "native").mkdir(parents=True, exist_ok=True)
    write_native(steps(count // 2), out / "native", "rfq", 3)
    write_dbmate(steps(count - count // 2, start=count // 2), out / "dbmate")
