"""SQLMigration: a Piccolo migration whose effect on the database is exactly the SQL it carries.

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

Backwards SQL that holds no statement makes the migration irreversible (`down` refuses it), unless
it says so on purpose with `NOTHING_TO_UNDO` (Django's `RunSQL.noop`). The statements are split by
PostgreSQL's own parser (statements.py); dbmigrate's executor runs them through migration.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from dbmigrate.loader import DOWN_SUFFIX, UP_SUFFIX

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


@dataclass
class SQLMigration(MigrationManager):
    steps: list[SQLStep] = field(default_factory=list)

    def sql(self, forwards: str, backwards: str | None) -> SQLMigration:
        """Add a step. `backwards=None` (or SQL with no statement) makes the migration irreversible;
        `backwards=NOTHING_TO_UNDO` says that undoing it needs no SQL."""
        self.steps.append(SQLStep(SQLText(forwards), None if backwards is None else SQLText(backwards)))
        return self

    def sql_files(self, migration_file: str | Path) -> SQLMigration:
        """Add the step held by `<stem>.up.sql` (required) and `<stem>.down.sql` (optional) beside it."""
        base = Path(migration_file)
        up, down = base.with_name(base.stem + UP_SUFFIX), base.with_name(base.stem + DOWN_SUFFIX)
        if not up.is_file():
            raise FileNotFoundError(f"{up.name} is missing: sql_files() reads the migration's SQL from it")
        backwards = SQLText(down.read_text(encoding="utf-8"), down) if down.is_file() else None
        self.steps.append(SQLStep(SQLText(up.read_text(encoding="utf-8"), up), backwards))
        return self

    @property
    def forwards_sql(self) -> list[str]:
        return [step.forwards.text for step in self.steps]

    async def run(self, backwards: bool = False) -> None:
        """Piccolo's entry point, for `piccolo migrations forwards|backwards` (which take no lock):
        the same statements dbmigrate's executor runs, on Piccolo's engine."""
        from dbmigrate.migration import SQLSteps

        await SQLSteps.for_piccolo_cli(self).run_on_piccolo_engine(backwards, preview=self.preview)
