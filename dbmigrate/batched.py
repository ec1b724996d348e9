"""The authoring API of staged and batched migrations (`from dbmigrate.batched import StagedMigration`).

A StagedMigration runs as stages, each its own short transaction: `sql(...)` stages and
`batched_update(...)` stages that change a table in batches by key range, resuming where a killed
run stopped (engine/staged.py, engine/batches.py). `require_finished(manager, app, id)` adds a
check that refuses to go on until a batched migration has finished (GitLab's
`ensure_batched_background_migration_is_finished`). Migration files import these names forever,
so this path stays; the code lives in the engine.
"""

from __future__ import annotations

from dbmigrate.engine.progress import DONE
from dbmigrate.engine.progress import TABLE as PROGRESS_TABLE
from dbmigrate.engine.sql_migration import NOTHING_TO_UNDO, SQLMigration
from dbmigrate.engine.staged import StagedMigration

__all__ = ["NOTHING_TO_UNDO", "StagedMigration", "require_finished", "finished_check_sql"]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def finished_check_sql(app: str, migration_id: str) -> str:
    """SQL that raises unless `migration_id` of `app` has finished: it is applied, or its progress
    row says done (a squash baseline that replaced it leaves that row behind)."""
    app_, id_ = _literal(app), _literal(migration_id)
    return f"""DO $finished$
BEGIN
    IF NOT EXISTS (SELECT FROM "migration" WHERE app_name = {app_} AND name = {id_})
       AND (to_regclass('{PROGRESS_TABLE}') IS NULL
            OR NOT EXISTS (SELECT FROM {PROGRESS_TABLE} WHERE app_name = {app_} AND migration_id = {id_}
                           AND state = '{DONE}')) THEN
        RAISE EXCEPTION 'the batched migration % % has not finished, and this migration relies on it', {app_}, {id_}
            USING HINT = 'Run make db-migrate without PHASE=pre (or resume it if paused) until it is applied.';
    END IF;
END
$finished$;
"""


def require_finished(manager: SQLMigration, migration_id: str, app: str | None = None) -> SQLMigration:
    """Add a step to `manager` (call it first) that refuses to go on, failing the migration with
    nothing of it applied, unless batched migration `migration_id` (of the manager's app) has finished."""
    check = finished_check_sql(app or manager.app_name, migration_id)
    return manager.sql(forwards=check, backwards=NOTHING_TO_UNDO)
