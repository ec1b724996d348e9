"""The authoring API of SQL migrations: what a migration file imports (`from dbmigrate.sql import
SQLMigration`). Migration files are kept forever and their imports are part of their checksum,
so this path stays; the code lives in the engine (engine/sql_migration.py).
"""

from dbmigrate.engine.sql_migration import NOTHING_TO_UNDO, SQLMigration, SQLStep, SQLText

__all__ = ["NOTHING_TO_UNDO", "SQLMigration", "SQLStep", "SQLText"]
