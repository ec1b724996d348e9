"""Piccolo's configuration for all three databases.

`DB` is the framework's engine: inside `dbmigrate` commands it is routed to the database being
migrated (under its migration lock); for the plain `piccolo` CLI it connects to the database named
by ORION_DB (orion, rfq or marketdata; default orion), e.g.
`ORION_DB=rfq piccolo migrations check`.
"""

from piccolo.conf.apps import AppRegistry

from dbmigrate.config import DATABASES
from dbmigrate.piccolo_engine import FrameworkEngine

DB = FrameworkEngine()

APP_REGISTRY = AppRegistry(apps=[f"{db.app}.piccolo_app" for db in DATABASES.values()])
