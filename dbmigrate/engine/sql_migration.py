"""SQLMigration: a migration whose effect on the database is exactly the SQL it carries (a Piccolo
MigrationManager where Piccolo's own commands ask for one, and only there: see the class).

Piccolo's DDL cannot express everything a schema contract needs (partial and multi-column
indexes, triggers and functions, INET, `now()` rather than `current_timestamp` defaults), and its
raw steps run before its own operations. An SQLMigration separates the two jobs, as Django's
`SeparateDatabaseAndState` does:

  * `sql(forwards, backwards)` steps are what runs against the database, in order (backwards
    steps in reverse order); `sql_files(__file__)` reads them from sibling `<stem>.up.sql` and
    `<stem>.down.sql` files instead (dbmate-style), which editors and squawk read as SQL;
  * Piccolo operations added to it (`add_table`, `add_column`, ...) only describe the same change
    to Piccolo's schema snapshot, so `piccolo migrations new --auto` diffs tables.py against it.
    They are never executed.

Reversibility is decided step by step: a step whose backwards SQL is missing, or holds no
statement, makes the migration irreversible (`down` refuses it), unless that step says so on
purpose with `NOTHING_TO_UNDO` (Django's `RunSQL.noop`), so `down` never says "reverted" after
undoing only part. Forwards SQL with no statement is refused as an unfilled skeleton, unless the
step says it is deliberate (`empty_forwards=True`: an imported migration whose source's up was
empty but whose down does something, which `down` must then run, as the source tool would). The statements are split by
PostgreSQL's own parser (statements.py). `SQLSteps` is this kind of migration as the executor sees
it (the Migration interface of migration.py): the manager's SQL, parsed once per direction, checked
before anything runs, and run as written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from piccolo import __VERSION__ as PICCOLO_VERSION  # piccolo/__init__.py alone: the version, nothing imported

from dbmigrate.engine import statements as sql_statements
from dbmigrate.engine.files import DOWN_SUFFIX, UP_SUFFIX, MigrationFile, scanned
from dbmigrate.engine.migration import (
    DownCopy,
    LintSource,
    Migration,
    MigrationOptions,
    StatementHooks,
    plain_transaction,
)
from dbmigrate.engine.statements import SQLSyntaxError, Statement

# The VERSION line of new migration files (scaffold and importer alike): the Piccolo they were written for.
MIGRATION_FILE_VERSION = PICCOLO_VERSION

# Backwards SQL that declares "rolling back needs no SQL": a visible choice, not an empty skeleton.
NOTHING_TO_UNDO = "-- dbmigrate: nothing to undo\n"


@dataclass(frozen=True)
class SQLText:
    """SQL and where it came from: a sibling .sql file, or the migration's own .py (path None)."""

    text: str
    path: Path | None = None

    @property
    def declares_nothing_to_undo(self) -> bool:
        return NOTHING_TO_UNDO.strip() in (line.strip() for line in self.text.splitlines())


@dataclass(frozen=True)
class SQLStep:
    forwards: SQLText
    backwards: SQLText | None  # None: this step cannot be undone
    empty_forwards: bool = False  # forwards SQL with no statement is deliberate, not an unfilled skeleton


# Piccolo's MigrationManager: importing it imports Piccolo's columns and tables (about 160 ms), which
# applying SQL migrations never needs. An SQLMigration becomes one only when Piccolo asks for one.
_PICCOLO_MANAGER = "piccolo.apps.migrations.auto.migration_manager"

# MigrationManager's operations that only describe a change to Piccolo's snapshot (what `new --auto`
# writes into forwards()). Outside Piccolo's commands they are kept as calls, not run: nothing of an
# SQLMigration executes them, and taking Piccolo's form for them alone would cost the import above.
# (add_raw and the rest still take the form at once; a test checks these names against Piccolo's.)
SNAPSHOT_OPERATIONS = frozenset(
    {
        "add_table",
        "drop_table",
        "rename_table",
        "change_table_schema",
        "add_column",
        "drop_column",
        "rename_column",
        "alter_column",
        "add_constraint",
        "drop_constraint",
    }
)


@dataclass
class SQLMigration:
    """SQL steps, plus (only for Piccolo) a description of the same change to Piccolo's snapshot.

    Invariant: wherever Piccolo's migration commands are loaded (`piccolo migrations forwards`,
    `new --auto`, squash) an SQLMigration is created as a Piccolo MigrationManager, which they
    require; elsewhere it is a plain object. There a snapshot operation (`add_table`, ...) is kept
    as a call (`described`), and any other of Piccolo's names makes it a MigrationManager in place
    (`__getattr__`), which first replays the kept calls: Piccolo's form never lacks one of them.
    Either way the executor sees the same steps."""

    migration_id: str = ""
    app_name: str = ""
    description: str = ""
    preview: bool = False
    fake: bool = False
    wrap_in_transaction: bool = True
    steps: list[SQLStep] = field(default_factory=list)

    def __new__(cls, *args, **kwargs):
        if _PICCOLO_MANAGER in sys.modules:  # Piccolo's commands run: they take only MigrationManagers
            cls = piccolo_form(cls)
        return super().__new__(cls)

    def __getattr__(self, name: str):
        """Called only for a name the object lacks: a snapshot operation is kept for later (unless
        Piccolo is loaded); any other of Piccolo's names makes the object a MigrationManager."""
        if name in SNAPSHOT_OPERATIONS and _PICCOLO_MANAGER not in sys.modules:
            return functools.partial(self._keep_call, name)
        form = piccolo_form(type(self))
        piccolo_fields = dataclasses.fields(form)
        known = hasattr(form, name) or any(f.name == name for f in piccolo_fields)  # a method, or a field
        if name.startswith("__") or form is type(self) or not known:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        for piccolo_field in piccolo_fields:
            if piccolo_field.name not in vars(self):
                default = piccolo_field.default
                if piccolo_field.default_factory is not dataclasses.MISSING:
                    default = piccolo_field.default_factory()
                setattr(self, piccolo_field.name, default)
        self.__class__ = form
        for operation, args, kwargs in vars(self).pop("described", ()):
            getattr(self, operation)(*args, **kwargs)
        return getattr(self, name)

    def _keep_call(self, operation: str, *args, **kwargs) -> None:
        vars(self).setdefault("described", []).append((operation, args, kwargs))

    def sql(self, forwards: str, backwards: str | None, empty_forwards: bool = False) -> SQLMigration:
        """Add a step. `backwards=None` (or SQL with no statement) makes the migration irreversible;
        `backwards=NOTHING_TO_UNDO` says that undoing it needs no SQL; `empty_forwards=True` that
        applying it runs nothing on purpose."""
        self.steps.append(SQLStep(SQLText(forwards), None if backwards is None else SQLText(backwards), empty_forwards))
        return self

    def sql_files(self, migration_file: str | Path, empty_forwards: bool = False) -> SQLMigration:
        """Add the step held by `<stem>.up.sql` (required) and `<stem>.down.sql` (optional) beside it;
        `empty_forwards=True`: an .up.sql with no statement is deliberate (see `sql`)."""
        base = Path(migration_file)
        up, down = base.with_name(base.stem + UP_SUFFIX), base.with_name(base.stem + DOWN_SUFFIX)
        forwards, backwards = _sql_text(up), _sql_text(down)
        if forwards is None:
            raise FileNotFoundError(f"{up.name} is missing: sql_files() reads the migration's SQL from it")
        self.steps.append(SQLStep(forwards, backwards, empty_forwards))
        return self

    @property
    def forwards_sql(self) -> list[str]:
        return [step.forwards.text for step in self.steps]

    async def run(self, backwards: bool = False) -> None:
        """Piccolo's entry point, for `piccolo migrations forwards|backwards` (which take no lock):
        the same statements dbmigrate's executor runs, on Piccolo's engine."""
        await SQLSteps.for_piccolo_cli(self).run_on_piccolo_engine(backwards, preview=self.preview)


def _sql_text(path: Path) -> SQLText | None:
    """The SQL file `path` as the loader's scan read it (files.scanned), else from disk; None: no such file."""
    data = scanned(path)
    if data is None:
        if not path.is_file():
            return None
        data = path.read_bytes()
    text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as a file read as text
    return SQLText(text, path)


@functools.cache
def piccolo_form(cls: type) -> type:
    """`cls` (SQLMigration or a subclass) as a Piccolo MigrationManager too; its own methods win."""
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager  # see _PICCOLO_MANAGER

    if issubclass(cls, MigrationManager):
        return cls
    return dataclass(
        type(cls.__name__, (cls, MigrationManager), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    )


class SQLSteps(Migration):
    """An SQLMigration: its SQL steps are exactly what runs; its Piccolo operations never run."""

    def __init__(self, file: MigrationFile, options: MigrationOptions, manager: SQLMigration) -> None:
        super().__init__(file, options)
        self.manager = manager
        # Per direction: each SQL text with its statements (none for a text of only comments).
        self._parsed: dict[bool, list[tuple[SQLText, list[Statement]]] | SQLSyntaxError] = {}

    @classmethod
    def for_piccolo_cli(cls, manager: SQLMigration) -> SQLSteps:
        return cls(MigrationFile("", manager.migration_id, None, ""), MigrationOptions(), manager)  # type: ignore[arg-type]

    @property
    def transactional(self) -> bool:
        return self.manager.wrap_in_transaction

    def _texts(self, backwards: bool) -> list[SQLText]:
        if not backwards:
            return [step.forwards for step in self.manager.steps]
        return [step.backwards for step in reversed(self.manager.steps) if step.backwards is not None]

    def _parse(self, backwards: bool) -> list[tuple[SQLText, list[Statement]]] | SQLSyntaxError:
        if backwards not in self._parsed:
            try:
                self._parsed[backwards] = [
                    (text, sql_statements.split(text.text, self._first_line(text))) for text in self._texts(backwards)
                ]
            except SQLSyntaxError as error:
                self._parsed[backwards] = error
        return self._parsed[backwards]

    def _parsed_texts(self, backwards: bool) -> list[tuple[SQLText, list[Statement]]]:
        parsed = self._parse(backwards)
        if isinstance(parsed, SQLSyntaxError):
            raise parsed
        return parsed

    def statements(self, backwards: bool = False) -> list[Statement]:
        return [statement for _, found in self._parsed_texts(backwards) for statement in found]

    @property
    def irreversible_reason(self) -> str | None:
        """Why `down` cannot undo it, step by step: one step without an undo is enough."""
        steps = self.manager.steps
        which = (lambda number: f" (step {number} of {len(steps)})") if len(steps) > 1 else (lambda number: "")
        for number, step in enumerate(steps, start=1):
            if step.backwards is None:
                return f"it has no backwards SQL{which(number)}"
        parsed = self._parse(True)
        if isinstance(parsed, SQLSyntaxError):
            return None  # one of problems(), reported before anything runs
        for index, (text, found) in enumerate(parsed):  # backwards texts run last step first
            if not found and not text.declares_nothing_to_undo:
                return (
                    f"its backwards SQL is empty{which(len(steps) - index)} (write NOTHING_TO_UNDO there if undoing "
                    "it really needs no SQL)"
                )
        return None

    def problems(self) -> list[str]:
        found = []
        for backwards in (False, True):
            parsed = self._parse(backwards)
            if isinstance(parsed, SQLSyntaxError):
                where = self._where_line(backwards, parsed.line)
                found.append(f"{'backwards' if backwards else 'forwards'} SQL does not parse ({where}): {parsed}")
        if found:
            return found
        deliberate = all(step.empty_forwards for step in self.manager.steps)
        if self.manager.steps and not self.statements(False) and not deliberate:
            found.append("its forwards SQL is empty (only comments): write the change, or delete the file")
        for backwards in (False, True):
            found += self._transaction_problems(backwards)
        return found

    def _transaction_problems(self, backwards: bool) -> list[str]:
        if not self.transactional:
            return []
        found = []
        for statement in self.statements(backwards):
            if not statement.outside_transaction and not statement.transaction_control:
                continue
            where = self._where_line(backwards, statement.line)
            if statement.outside_transaction:
                found.append(
                    f"{statement.outside_transaction} ({where}) cannot run inside a transaction, and this migration "
                    "is transactional: move it to a migration of its own created with "
                    "`make db-migrate-create NAME=... TRANSACTION=0` (wrap_in_transaction=False)"
                )
            elif statement.transaction_control:
                found.append(
                    f"{statement.summary!r} ({where}) controls the transaction, which dbmigrate already opens and "
                    "commits with the bookkeeping: remove it"
                )
        return found

    def _where_line(self, backwards: bool, line: int) -> str:
        texts = self._texts(backwards)
        path = next((t.path for t in texts if t.path is not None), None)
        name = path.name if path is not None else (self.file.path.name if self.file.path else "the migration")
        return f"{name} line {line}"

    def _first_line(self, text: SQLText) -> int:
        """The line of the migration's file (or sibling .sql file) where `text` starts."""
        if text.path is not None:
            return 1
        index = self._file_text.find(text.text)
        return self._file_text[:index].count("\n") + 1 if index >= 0 else 1

    @functools.cached_property
    def _file_text(self) -> str:
        """The migration's .py, read once (to place its SQL strings at their lines)."""
        try:
            return self.file.path.read_text(encoding="utf-8") if self.file.path else ""
        except OSError:
            return ""

    def transaction(self, conn: asyncpg.Connection, prelude: str) -> contextlib.AbstractAsyncContextManager:
        return plain_transaction(conn, prelude)

    async def run(self, conn: asyncpg.Connection, backwards: bool, hooks: StatementHooks | None = None) -> None:
        if self.transactional:
            # The whole text of each step in one simple-query round trip: it runs in our transaction.
            for text, found in self._parsed_texts(backwards):
                if found:  # a text of only comments has nothing to send
                    await conn.execute(text.text)
            return
        # Outside a transaction every statement must go alone: PostgreSQL runs a multi-statement
        # query as one implicit transaction, which CREATE INDEX CONCURRENTLY refuses.
        hooks = hooks or StatementHooks()
        for count, statement in enumerate(self.statements(backwards), start=1):
            if count < hooks.first:  # finished in an earlier run; its session settings are this run's too
                if statement.session_setting:
                    await conn.execute(statement.sql)
                continue
            if hooks.before is not None:
                await hooks.before(count, statement)
            await conn.execute(statement.sql)
            if hooks.done is not None:
                await hooks.done(count, statement)

    def one_query(self, backwards: bool) -> str | None:
        if not self.transactional or self.staged:
            return None
        # A newline before each `;`: a text may end in a `--` comment, which would swallow it.
        return "\n;\n".join(text.text for text, found in self._parsed_texts(backwards) if found)

    async def preview(self, conn: asyncpg.Connection | None, backwards: bool) -> str:
        return "".join(f"{statement.sql};\n\n" for statement in self.statements(backwards)).strip() + "\n"

    async def render_down_copy(self) -> DownCopy | None:
        """Its backwards statements, as PostgreSQL's parser splits them (what `down` runs)."""
        self.down_copy = None
        if self.reversible and not self.problems():
            sql = await self.preview(None, True) if self.statements(True) else NOTHING_TO_UNDO
            self.down_copy = DownCopy(sql, self.transactional)
        return self.down_copy

    async def lint_sources(self, conn: asyncpg.Connection) -> list[LintSource]:
        file_name = str(self.file.path) if self.file.path else self.id
        return [
            LintSource(text.text, str(text.path) if text.path else file_name, self._first_line(text))
            for text in self._texts(False)
        ]

    async def run_on_piccolo_engine(self, backwards: bool, preview: bool) -> None:
        """For `piccolo migrations forwards|backwards`: the same statements, on Piccolo's engine."""
        if self.irreversible_reason and backwards:
            raise RuntimeError(f"{self.id} cannot be rolled back: {self.irreversible_reason}")
        problems = self.problems()
        if problems:
            raise RuntimeError(f"{self.id}: {problems[0]}")
        if preview:
            print(await self.preview(None, backwards))
            return
        from piccolo.engine import engine_finder

        engine = engine_finder()
        async with contextlib.AsyncExitStack() as stack:
            if self.transactional:
                await stack.enter_async_context(engine.transaction())
            transaction = engine.current_transaction.get()
            connection = transaction.connection if transaction else await engine.get_new_connection()
            try:
                await self.run(connection, backwards)
            finally:
                if transaction is None:
                    await connection.close()
