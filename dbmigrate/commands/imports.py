"""import and baseline FROM_TOOL: bring another tool's history in as migration files, and record
what that tool already applied to a live database (the importing package does the work).
"""

from __future__ import annotations

from pathlib import Path

from dbmigrate.commands.common import NO_OPTIONS, Options, guard
from dbmigrate.core.config import Database, Settings
from dbmigrate.core.errors import UsageError
from dbmigrate.importing import adopt, writer


def import_history(settings: Settings, database: Database, source: str, format: str | None) -> list[Path]:
    if not source.strip():
        raise UsageError("import needs FROM (--from), the folder of migrations to import")
    return writer.import_history(settings, database, Path(source), format)


async def baseline_from_tool(settings: Settings, database: Database, tool: str, options: Options = NO_OPTIONS) -> None:
    if options.to:
        raise UsageError("baseline takes TO or FROM_TOOL, not both")
    guard(settings, "baseline", [database], options.confirm)
    await adopt.baseline_from_tool(settings, database, tool)
