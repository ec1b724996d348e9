"""The marketdata database's Piccolo app: its tables (tables.py) and migrations (piccolo_migrations/)."""

import os

from piccolo.conf.apps import AppConfig, table_finder

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="marketdata",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=table_finder(modules=["marketdata.tables"], exclude_imported=True),
    migration_dependencies=[],
    commands=[],
)
