"""The one exception type users see: a one-line message saying what was wrong and what to do.

Every layer raises `UserError` for bad input or an unusable environment; the CLI prints its
message (never a traceback) and exits non-zero. Messages never contain passwords: URLs are
shown through `dbmigrate.urls.redact`.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; `str(error)` is the whole explanation."""

    exit_code = 1


class UsageError(UserError):
    """The command line itself was wrong (unknown database, bad migration name, ...)."""

    exit_code = 2
