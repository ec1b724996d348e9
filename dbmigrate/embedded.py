"""The embedded PostgreSQL server used when no database URL is configured.

It comes from the PyPI package `pgserver` (PostgreSQL binaries in a wheel), keeps its data in a
git-ignored folder of the project (`.pgdata` unless ORION_PGDATA says otherwise), listens only on
a Unix socket inside that folder, and stays running between commands until `make db-stop`.

Finding a running server reads `postmaster.pid` and nothing else, so commands against an already
running server never import `pgserver` (that import alone costs more than a no-op migrate).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from dbmigrate.errors import UserError

SUPERUSER = "postgres"


@dataclass(frozen=True)
class RunningServer:
    pid: int
    port: int
    socket_dir: Path

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port={self.port}"


def find_running(data_dir: Path) -> RunningServer | None:
    """The server running on `data_dir`, read from its postmaster.pid, or None."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir, status = int(lines[0]), int(lines[3]), Path(lines[4]), lines[7]
    except (OSError, IndexError, ValueError):
        return None
    if status.strip() != "ready" or not _process_alive(pid):
        return None
    if not (socket_dir / f".s.PGSQL.{port}").exists():
        return None
    return RunningServer(pid=pid, port=port, socket_dir=socket_dir)


def ensure_running(data_dir: Path) -> tuple[RunningServer, bool]:
    """Start the embedded server on `data_dir` unless it already runs.

    Returns where it listens and whether this call started it.
    """
    server = find_running(data_dir)
    if server:
        return server, False
    try:
        pgserver = _import_pgserver()
    except ImportError:
        raise UserError(
            "no database URL is configured and pgserver is not installed: run `make venv`, or set DATABASE_URL"
        ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # cleanup_mode=None leaves the server running after this process exits.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pgserver.get_server(data_dir, cleanup_mode=None)
    except Exception as error:  # pgserver raises bare subprocess and assertion errors
        log = data_dir / "log"
        raise UserError(f"the embedded PostgreSQL server did not start ({type(error).__name__}): see {log}") from None
    server = find_running(data_dir)
    if server is None:
        raise UserError(f"the embedded PostgreSQL server did not start: see {data_dir / 'log'}")
    return server, True


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    if find_running(data_dir) is None:
        return False
    pg_ctl = _import_pgserver()._commands.pg_ctl
    # pgserver runs the server as the system user "pgserver" when we are root.
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True


def _import_pgserver():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); it copes.
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver._commands  # noqa: F401

    return pgserver


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
