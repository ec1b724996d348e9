"""Piccolo's configuration for all three databases.

`DB` is the framework's engine: inside `dbmigrate` commands it is routed to the database being
migrated (under its migration lock). Piccolo's own CLI is made safe by `piccolo_cli.install()`:
`piccolo migrations forwards|backwards|check|new <app>` works on that app's own database (forwards
and backwards through dbmigrate's executor, with its lock and bookkeeping), never on another's.
"""

from piccolo.conf.apps import AppRegistry

from dbmigrate import piccolo_cli
from dbmigrate.core.config import DATABASES
from dbmigrate.engine.piccolo_engine import FrameworkEngine

DB = FrameworkEngine()

APP_REGISTRY = AppRegistry(apps=[f"{db.app}.piccolo_app" for db in DATABASES.values()])

piccolo_cli.install()
