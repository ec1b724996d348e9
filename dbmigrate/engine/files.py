"""Migration files: which migrations each database has, read as text, never imported here.

A migration is a Python file in `<app>/piccolo_migrations/` with a line `ID = "..."`, perhaps with
sibling `<stem>.up.sql` / `<stem>.down.sql` files. IDs are read with a regular expression, so
finding out that nothing is pending never imports Piccolo; so is a `PHASE = "post"` line
(phases.py). A baseline (a file with a `REPLACES = [...]` line) is not part of the history and
is left out (baselines.py finds it). Invariant: `discover` returns each
migration once, in the order migrations apply, each file read and hashed once; two files with one
ID, or with one number (`004_a` and `004_b`, `4_a` and `004_b`), are an error. The bytes hashed are
kept with the migration (`sources`), and are what the loader runs: a file edited after the scan
cannot run under the checksum of its older text.

Migrations apply in the order of their numbers, never of their text: `1000_x` after `999_y`,
whatever the zero padding (`order_key`). IDs without a number (Piccolo's timestamps) come after
every numbered one, in text order. Every part that orders or compares IDs uses `order_key`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from dbmigrate.core.config import MIGRATIONS_FOLDER, Database
from dbmigrate.core.errors import UserError
from dbmigrate.engine import phases

UP_SUFFIX = ".up.sql"  # SQLMigration.sql_files(__file__) reads <stem>.up.sql and <stem>.down.sql
DOWN_SUFFIX = ".down.sql"
_ID_LINE = re.compile(r"""^ID\s*(?::\s*str\s*)?=\s*(['"])(?P<id>[^'"\n]+)\1""", re.MULTILINE)
_NUMBERED_ID = re.compile(r"^(?P<number>\d+)_")
ID_LINE = _ID_LINE
_REPLACES_LINE = re.compile(r"^REPLACES\s*(?::[^=]*)?=", re.MULTILINE)  # a baseline (baselines.py)


def number_of(migration_id: str) -> int | None:
    """The sequential number of an ID like `002_add_x`, or None for a timestamp ID."""
    match = _NUMBERED_ID.match(migration_id)
    return int(match.group("number")) if match else None


def order_key(migration_id: str) -> tuple[int, int, str]:
    """The sort key of a migration ID: numbered IDs by number (`1000_x` after `999_y`, `0999_x`
    equal in rank to `999_x`), then IDs without a number in text order."""
    number = number_of(migration_id)
    return (0, number, migration_id) if number is not None else (1, 0, migration_id)


def last_of(ids) -> str | None:
    """The ID that applies last among `ids` (by number), or None when there is none."""
    return max(ids, key=order_key, default=None)


@dataclass(frozen=True)
class MigrationFile:
    app: str
    id: str
    path: Path
    checksum: str  # sha256 of the file and its .up.sql/.down.sql, line endings normalised: what "modified" is judged by
    phase: str = phases.PRE  # PHASE = "post": runs after the deploy (phases.py)
    replaces: tuple[str, ...] = ()  # a baseline: the IDs of the history it stands for (baselines.py)
    # The .py and its .sql files as the scan read them: what the checksum covers, and what runs.
    sources: Mapping[Path, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def number(self) -> int | None:
        return number_of(self.id)

    def relative_path(self, root: Path) -> str:
        try:
            return str(self.path.relative_to(root))
        except ValueError:
            return str(self.path)


def migrations_folder(root: Path, database: Database) -> Path:
    return root / database.app / MIGRATIONS_FOLDER


def discover(root: Path, database: Database, shared_numbers: bool = False) -> list[MigrationFile]:
    """Every migration of `database`, in the order they apply (by number). Two files with one ID
    are an error, and so are two with one number unless `shared_numbers` (renumber and sql, which
    exist to sort out two branches that both wrote 004, see them as they are)."""
    return scan(root, database, shared_numbers)[0]


def scan(
    root: Path, database: Database, shared_numbers: bool = False
) -> tuple[list[MigrationFile], list[tuple[Path, bytes]]]:
    """`discover`, and the baseline files it left out, with their content (baselines.py), in one
    reading of the folder."""
    folder = migrations_folder(root, database)
    if not folder.is_dir():
        raise UserError(f"{folder.relative_to(root)} does not exist: the {database.app} app has no migrations folder")
    found: dict[str, MigrationFile] = {}
    numbered: dict[int, MigrationFile] = {}
    left_out: list[tuple[Path, bytes]] = []
    names = {entry.name for entry in os.scandir(folder)}  # one listing: no stat per sibling .sql file
    for name in sorted(n for n in names if n.endswith(".py") and n != "__init__.py"):
        path = folder / name
        content = _read(path)
        text = content.decode("utf-8", errors="replace")
        if is_baseline(text):
            left_out.append((path, content))  # not part of the history (baselines.py)
            continue
        match = _ID_LINE.search(text)
        if not match:
            raise UserError(f'{path.relative_to(root)} has no ID line: add ID = "{implied_id(path, database.app)}"')
        sources = {path: content, **{sibling: _read(sibling) for sibling in sibling_sql_files(path, names)}}
        migration = MigrationFile(
            app=database.app,
            id=match.group("id"),
            path=path,
            checksum=sources_checksum(sources),
            phase=_phase(text, path.relative_to(root)),
            sources=sources,
        )
        twin = found.get(migration.id)
        if twin:
            raise UserError(
                f"two migrations of {database.app} have the ID {migration.id!r}: "
                f"{twin.relative_path(root)} and {migration.relative_path(root)}; renumber one"
            )
        found[migration.id] = migration
        number = migration.number
        if number is not None and not shared_numbers:
            twin = numbered.setdefault(number, migration)
            if twin is not migration:
                raise UserError(
                    f"two migrations of {database.app} have the number {number}: {twin.relative_path(root)} "
                    f"({twin.id}) and {migration.relative_path(root)} ({migration.id}); migrations apply by number, "
                    "so renumber one after the last"
                )
    return sorted(found.values(), key=lambda m: order_key(m.id)), left_out


def is_baseline(text: str) -> bool:
    """A file with a `REPLACES = [...]` line: a baseline standing for a squashed history."""
    return "REPLACES" in text and _REPLACES_LINE.search(text) is not None


def _phase(text: str, where: Path) -> str:
    try:
        return phases.declared_phase(text)
    except ValueError as error:
        raise UserError(f"{where}: {error}") from None


def sibling_sql_files(migration_file: Path, names: set[str] | None = None) -> list[Path]:
    """The .up.sql / .down.sql files that belong to `migration_file` (covered by its checksum);
    `names`: the folder's entries, when the caller listed it already."""
    candidates = (migration_file.with_name(migration_file.stem + s) for s in (UP_SUFFIX, DOWN_SUFFIX))
    if names is not None:
        return [path for path in candidates if path.name in names]
    return [path for path in candidates if path.is_file()]


def implied_id(path: Path, app: str) -> str:
    """The ID a file's name implies: `orion_003_add_x.py` -> `003_add_x`."""
    stem = path.stem
    return stem[len(app) + 1 :] if stem.startswith(f"{app}_") else stem


def checksum(content: bytes) -> str:
    return hashlib.sha256(content.replace(b"\r\n", b"\n")).hexdigest()


def file_checksum(path: Path, content: bytes) -> str:
    """The checksum of the migration `path` whose text is `content` (sources_checksum)."""
    return sources_checksum({path: content, **{sibling: _read(sibling) for sibling in sibling_sql_files(path)}})


def sources_checksum(sources: Mapping[Path, bytes]) -> str:
    """The checksum of a migration from its files (the .py first): the .py alone (as before sibling
    files existed), or the .py and its sibling SQL files, each with its name, so a changed or
    renamed .sql file counts too."""
    (py, content), *siblings = sources.items()
    if not siblings:
        return checksum(content)
    return checksum(b"\0".join([content] + [path.name.encode() + b"\0" + data for path, data in siblings]))


def _read(path: Path) -> bytes:
    with open(path, "rb", buffering=0) as handle:  # unbuffered: one read of the whole file
        return handle.readall()


# While a migration's code runs (its forwards()), the files its scan read: sql_files() takes its
# SQL from them (loader.py, sql_migration.py).
_loading: ContextVar[Mapping[Path, bytes] | None] = ContextVar("dbmigrate_loading", default=None)


@contextlib.contextmanager
def loading(migration: MigrationFile) -> Iterator[None]:
    token = _loading.set(migration.sources)
    try:
        yield
    finally:
        _loading.reset(token)


def scanned(path: Path) -> bytes | None:
    """The bytes of `path` as the scan of the migration being loaded read them; None: not read by it."""
    return (_loading.get() or {}).get(path)
