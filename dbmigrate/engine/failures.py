"""What went wrong, in one line that says what to do: the wording of the engine's errors.

The runner (runner.py) catches; this module words. Every message names the database and, when there is
one, the migration, and never shows a password (connection.first_line redacts URLs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from dbmigrate.core.errors import UserError
from dbmigrate.server import connection

if TYPE_CHECKING:
    from dbmigrate.engine.migration import Migration


def original(error: BaseException) -> BaseException:
    """The error that started it: when a connection dies inside a transaction, asyncpg raises
    "cannot call Transaction.rollback(): the underlying connection is closed" on the way out."""
    while isinstance(error, asyncpg.InterfaceError) and error.__context__ is not None:
        error = error.__context__
    return error


def error_text(error: BaseException) -> str:
    text = connection.first_line(error)
    return f"{type(error).__name__}: {text}" if isinstance(error, asyncpg.PostgresError) else text


def connection_lost(error: BaseException) -> bool:
    """The server went away (shut down, crashed, network gone), rather than refusing a statement."""
    return isinstance(
        error,
        (
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.InterfaceError,
            asyncpg.OperatorInterventionError,  # class 57: admin shutdown, crash shutdown, terminated
            ConnectionError,  # reset, refused, broken pipe; not every OSError a raw step may raise
        ),
    ) and not isinstance(error, asyncpg.QueryCanceledError)


def bookkeeping_refused(database: str, error: BaseException) -> UserError | None:
    """A UserError for the ways a database refuses the framework's own tables, or None."""
    reason = _refusal(error)
    return UserError(f"{database}: {reason}") if reason else None


def _refusal(error: BaseException) -> str | None:
    """What a read-only database or a role without privileges said, and the fix; None for other errors."""
    if isinstance(error, asyncpg.ReadOnlySQLTransactionError):
        return (
            f"the database is read-only ({connection.first_line(error)}): connect to the primary, "
            "not a replica, or turn off default_transaction_read_only for the migrating role"
        )
    if isinstance(error, asyncpg.InsufficientPrivilegeError):
        return (
            f"the role may not create or write the bookkeeping tables ({connection.first_line(error)}): "
            "migrate as the schema's owner, or GRANT CREATE ON SCHEMA public to the role"
        )
    return None


@dataclass(frozen=True)
class Resume:
    """Where a failed non-transactional migration stopped, and so where its next run goes on."""

    done: int | None
    total: int | None
    last: str | None
    invalid_indexes: list[str]  # INVALID indexes the failed statement left (schema.name)

    @property
    def progress(self) -> str:
        return incomplete_progress(self.done, self.total, self.last)

    @property
    def next_run(self) -> str:
        """What the next migrate does, for the advice after the error."""
        dropping = (
            f"drops INVALID index {', '.join(self.invalid_indexes)} it left, then " if self.invalid_indexes else ""
        )
        if not self.done:
            return f"the next run {dropping}runs it again from statement 1"
        return (
            f"the next run {dropping}resumes at statement {self.done + 1}, after the {self.done} that finished "
            "(keep those as they are)"
        )


def incomplete_progress(done: int | None, total: int | None, last: str | None) -> str:
    """`statement 1 of 2 finished (line 3: CREATE INDEX ...)` or `no statement finished`."""
    if not done:
        return f"no statement of {total} finished" if total else "no statement finished"
    of_total = f" of {total}" if total else ""
    return f"statement {done}{of_total} finished" + (f" ({last})" if last else "")


def migration_failed(
    database: str,
    migration: Migration,
    backwards: bool,
    error: BaseException,
    lock_timeout: str,
    statement_timeout: str,
    attempts: int = 1,
    resume: Resume | None = None,
) -> UserError:
    """The one line for a migration that raised while applying or reverting."""
    error = original(error)
    where = f"{database}: {'rolling back' if backwards else 'applying'} {migration.id}"
    message = error_text(error)
    if isinstance(error, asyncpg.LockNotAvailableError):
        message = (
            f"a table it needs stayed locked past lock_timeout {lock_timeout} ({attempts} attempt(s)); retry when "
            "the table is quieter, or set LOCK_TIMEOUT in the migration"
        )
    elif isinstance(error, asyncpg.QueryCanceledError):
        message = (
            f"statement_timeout {statement_timeout} reached ({message}); set STATEMENT_TIMEOUT in the migration to "
            "allow more"
        )
    message = _refusal(error) or message
    if migration.staged and not backwards:
        return UserError(
            f"{where} stopped: {message}. Its stages and batches that finished are kept, and `make "
            "db-migrate-status` shows how far it got: run the command again to resume where it stopped"
        )
    if not migration.transactional and not migration.staged:
        done = f"; {resume.progress}" if resume else ""
        shown = "" if backwards else ", and `make db-migrate-status` shows it"
        if backwards:
            advice = "Undo or finish its statements by hand, then run the command again"
        elif resume is None:  # the connection was lost: the trail says where it stopped
            advice = "Fix the cause and migrate again: the next run resumes after the statements that finished"
        else:
            advice = f"Fix the cause and migrate again: {resume.next_run}"
        return UserError(
            f"{where} failed midway and is NOT transactional, so earlier statements stayed done{done}{shown}: "
            f"{message}. {advice}"
        )
    if connection_lost(error):
        return UserError(
            f"{where}: lost the connection to the server ({message}); its transaction did not commit: "
            "run the command again when the server is back"
        )
    return UserError(f"{where} failed and was rolled back; no later migration ran: {message}")
