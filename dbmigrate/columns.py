"""Column types that PostgreSQL has and Piccolo does not, for apps' tables.py.

They live in the framework rather than in an app because `piccolo migrations new --auto` writes an
import of a custom column's module into every migration that uses it (`from dbmigrate.columns
import Inet`). Migrations are kept forever, so that module must be stable and shared by all apps:
moving a column class out of an app's tables.py would break every old migration importing it.

Like any Piccolo column, these only describe the schema to the ORM and to Piccolo's migration
snapshot; the database itself is built by each migration's SQL.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns.base import Column


class Inet(Column):
    """PostgreSQL `INET`: an IPv4 or IPv6 host address, optionally with a netmask.

    asyncpg accepts `str` or `ipaddress` objects and returns `ipaddress.IPv4Address` /
    `IPv6Address` (or `...Interface` when a netmask is stored).
    """

    value_type = str

    def __init__(self, default: str | None = None, **kwargs: Any) -> None:
        self._validate_default(default, (str, None))
        self.default = default
        super().__init__(default=default, **kwargs)

    @property
    def column_type(self) -> str:
        return "INET"
