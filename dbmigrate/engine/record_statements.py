"""The bookkeeping as statement text, its values written in as literals, to be sent inside a
migration's own query (runner.py: one round trip, or several migrations in one query) instead of
as a round trip of its own (recorder.py writes the same rows with parameters).

Invariant: a literal reads back as the same text whatever standard_conforming_strings says, and
the statements write exactly the rows recorder.record_applied and record_unapplied write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbmigrate.engine.recorder import APPLIED, UNAPPLIED_SQL, applied_sql, who

if TYPE_CHECKING:
    from dbmigrate.engine.migration import DownCopy, Migration

# When a migration sent in a query of its own or with others (runner.py) began: the server's clock
# read after its BEGIN (BEGAN). now() will not do: every transaction of one query shares it, the
# moment that query arrived. A migration that RESETs it (RESET ALL) is timed from now().
BEGAN_SETTING = "dbmigrate.began"
BEGAN = f"set_config('{BEGAN_SETTING}', extract(epoch FROM clock_timestamp())::text, true)"  # in a SELECT
_SINCE_BEGAN = (
    f"(extract(epoch FROM clock_timestamp()) - coalesce(nullif(current_setting('{BEGAN_SETTING}', true), '')::numeric, "
    "extract(epoch FROM now()))) * 1000"
)


def applied_statement(
    app: str, migration_id: str, checksum: str, offset_ms: float, down: DownCopy | None, tell: str | None = None
) -> str:
    """What recorder.record_applied runs, as one statement with its values written in, to be sent in the
    migration's own query (runner.py: one round trip). The server measures the duration: from BEGAN,
    run after the transaction's BEGIN, to this statement, plus `offset_ms` spent before it began;
    the rows are stamped with the server's clock as it records them. `tell`: an SQL expression of
    the recorded `duration_ms` the statement then selects (told_durations.tell_expression)."""
    duration = f"round({offset_ms:.3f} + {_SINCE_BEGAN})::int"
    values = _applied_values(app, migration_id, checksum, duration, down)
    return applied_sql(values, at="clock_timestamp()", tell=tell)


def run_statement(app: str, migration: Migration, backwards: bool, duration_ms: int) -> str:
    """What recorder.record_run runs, as one statement with its values written in (`duration_ms`: measured
    by the caller), to be sent with its transaction in one query (stepwise.py)."""
    if backwards:
        return unapplied_statement(app, migration.id)
    values = _applied_values(app, migration.id, migration.file.checksum, str(duration_ms), migration.down_copy)
    return applied_sql(values, at="clock_timestamp()")


def _applied_values(app: str, migration_id: str, checksum: str, duration: str, down: DownCopy | None) -> list[str]:
    """The history columns of an applied row as SQL (`duration`: an expression), in recorder._UPSERT_HISTORY's order."""
    down_sql, down_transactional = (sql_literal(down.sql), str(down.transactional)) if down else ("NULL", "NULL")
    literals = [sql_literal(value) for value in (app, migration_id, APPLIED, checksum)]
    return [*literals, duration, sql_literal(who()), "NULL", down_sql, down_transactional]


def unapplied_statement(app: str, migration_id: str) -> str:
    """What recorder.record_unapplied runs, as one statement with its values written in (applied_statement)."""
    return UNAPPLIED_SQL.format(app=sql_literal(app), name=sql_literal(migration_id))


def sql_literal(value: str) -> str:
    """An SQL string literal of `value`, the same whatever standard_conforming_strings says."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
