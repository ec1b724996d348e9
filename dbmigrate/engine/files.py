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
    # By file name, the .py and its .sql files (all in the .py's folder) as the scan read them: what
    # the checksum covers, and what runs.
    sources: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    # The path as messages show it: relative to the project, as the scan found it (else whole), so that
    # no part that words a message about a file needs the project's root.
    shown: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.shown and self.path is not None:
            object.__setattr__(self, "shown", str(self.path))

    @property
    def number(self) -> int | None:
        return number_of(self.id)


def shown_path(path: str | Path, root: Path) -> str:
    """`path` as a message shows it: relative to the project's `root`, or whole when outside it."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


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
    migrations, left_out = _read_folder(folder, root, database.app)
    found: dict[str, MigrationFile] = {}
    numbered: dict[int, MigrationFile] = {}
    for migration in migrations:
        twin = found.get(migration.id)
        if twin:
            raise UserError(
                f"two migrations of {database.app} have the ID {migration.id!r}: "
                f"{twin.shown} and {migration.shown}; renumber one"
            )
        found[migration.id] = migration
        number = migration.number
        if number is not None and not shared_numbers:
            twin = numbered.setdefault(number, migration)
            if twin is not migration:
                raise UserError(
                    f"two migrations of {database.app} have the number {number}: {twin.shown} "
                    f"({twin.id}) and {migration.shown} ({migration.id}); migrations apply by number, "
                    "so renumber one after the last"
                )
    return sorted(found.values(), key=lambda m: order_key(m.id)), left_out


def _read_folder(folder: Path, root: Path, app: str) -> tuple[list[MigrationFile], list[tuple[Path, bytes]]]:
    """The migrations of `folder` in name order, and its baselines with their content.

    One listing, and files opened by name in the open folder: a no-op migrate reads every file of
    the history, so this loop is most of its own time (no stat per sibling .sql file, no path
    object per sibling, no lookup of the folder's path per file)."""
    migrations: list[MigrationFile] = []
    left_out: list[tuple[Path, bytes]] = []
    names = {entry.name for entry in os.scandir(folder)}
    shown_folder = shown_path(folder, root)
    with _open_folder(folder) as where:
        for name in sorted(n for n in names if n.endswith(".py") and n != "__init__.py"):
            content = _read_in(name, where, folder)
            text = content.decode("utf-8", errors="replace")
            path, shown = folder / name, os.path.join(shown_folder, name)
            if is_baseline(text):
                left_out.append((path, content))  # not part of the history (baselines.py)
                continue
            match = _ID_LINE.search(text)
            if not match:
                raise UserError(f'{shown} has no ID line: add ID = "{implied_id(path, app)}"')
            sources = {name: content}
            for sibling in (name[:-3] + UP_SUFFIX, name[:-3] + DOWN_SUFFIX):
                if sibling in names:
                    sources[sibling] = _read_in(sibling, where, folder)
            checksum = sources_checksum(sources)
            phase = _phase(text, shown)
            migrations.append(
                MigrationFile(app, match.group("id"), path, checksum, phase, sources=sources, shown=shown)
            )
    return migrations, left_out


def is_baseline(text: str) -> bool:
    """A file with a `REPLACES = [...]` line: a baseline standing for a squashed history."""
    return "REPLACES" in text and _REPLACES_LINE.search(text) is not None


def _phase(text: str, shown: str) -> str:
    try:
        return phases.declared_phase(text)
    except ValueError as error:
        raise UserError(f"{shown}: {error}") from None


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
    siblings = {sibling.name: _read(sibling) for sibling in sibling_sql_files(path)}
    return sources_checksum({path.name: content, **siblings})


def sources_checksum(sources: Mapping[str, bytes]) -> str:
    """The checksum of a migration from its files by name (the .py first): the .py alone (as before
    sibling files existed), or the .py and its sibling SQL files, each with its name, so a changed or
    renamed .sql file counts too."""
    (_, content), *siblings = sources.items()
    if not siblings:
        return checksum(content)
    return checksum(b"\0".join([content] + [name.encode() + b"\0" + data for name, data in siblings]))


@contextlib.contextmanager
def _open_folder(folder: Path) -> Iterator[int]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    return _read_in(os.fspath(path), None, path.parent)


def _read_in(name: str, folder: int | None, parent: Path) -> bytes:
    """The whole file `name` of the open folder `folder` (`parent`; None: `name` is a path), in as few
    system calls as it takes (most migration files fit one read); an OSError names the whole path."""
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=folder)
        try:
            data = os.read(fd, _READ_BYTES)
            if len(data) < _READ_BYTES:
                return data
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as error:  # opened by name, or a read of a folder: say which file
        raise type(error)(error.errno, error.strerror, str(parent / os.path.basename(name))) from None


_READ_BYTES = 1 << 16


# While a migration's code runs (its forwards()), the folder and files its scan read: sql_files()
# takes its SQL from them (loader.py, sql_migration.py).
_loading: ContextVar[MigrationFile | None] = ContextVar("dbmigrate_loading", default=None)


@contextlib.contextmanager
def loading(migration: MigrationFile) -> Iterator[None]:
    token = _loading.set(migration)
    try:
        yield
    finally:
        _loading.reset(token)


def scanned(path: Path) -> bytes | None:
    """The bytes of `path` as the scan of the migration being loaded read them; None: not read by it."""
    migration = _loading.get()
    if migration is None or path.parent != migration.path.parent:
        return None
    return migration.sources.get(path.name)
