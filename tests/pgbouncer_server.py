"""A real PgBouncer (Debian's `pgbouncer` package) in front of a private PostgreSQL, for the tests
that prove migrations through transaction pooling.

Every database name is served (`* =` fallback), in `pool_mode = transaction`, with fewer server
connections than the tests have clients, so clients really share server connections. PgBouncer
refuses to run as root: under root it runs as the `postgres` system user, as the servers do.
Its own configuration is left as Debian ships it: no `ignore_startup_parameters`, unless asked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from private_server import USER, PrivateServer, _system_user
from support import FIXTURE_PROJECT, Databases, copy_project, run_sql

from dbmigrate.core.config import DATABASES

BINARY_PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
# CI sets this: there a PgBouncer test that would be skipped (no pgbouncer) fails instead (conftest.py).
REQUIRED = os.environ.get("ORION_REQUIRE_PGBOUNCER") == "1"


def binary() -> str | None:
    """Debian's pgbouncer, or the one ORION_TEST_PGBOUNCER names (a path that does not exist: none)."""
    configured = os.environ.get("ORION_TEST_PGBOUNCER")
    if configured is not None:
        return configured if os.path.exists(configured) else None
    found = shutil.which("pgbouncer")
    return found or next((p for p in BINARY_PLACES if os.path.exists(p)), None)


@dataclass
class PgBouncer:
    process: subprocess.Popen
    port: int
    password: str
    folder: Path

    def url(self, dbname: str) -> str:
        return f"postgresql://{USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_pgbouncer(
    server: PrivateServer,
    folder: Path,
    pool_size: int = 4,
    ignore_startup_parameters: str = "",
    pool_mode: str = "transaction",
) -> PgBouncer:
    run_as = _system_user()
    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    users = folder / "userlist.txt"
    users.write_text(f'"{USER}" "{server.password}"\n')
    ignore = f"ignore_startup_parameters = {ignore_startup_parameters}\n" if ignore_startup_parameters else ""
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server.port}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {users}\n"
        f"pool_mode = {pool_mode}\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 200\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
        f"{ignore}"
    )
    if run_as:
        for path in (folder, users, config):
            shutil.chown(path, run_as)
        os.chmod(users, 0o600)
    process = subprocess.Popen(
        [binary() or "pgbouncer", str(config)],
        user=run_as,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bouncer = PgBouncer(process, port, server.password, folder)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited {process.returncode}: {bouncer.log()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return bouncer
        except OSError:
            time.sleep(0.05)
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not listen on port {port}: {bouncer.log()[-500:]}")


@contextlib.contextmanager
def running_pgbouncer(private_server: PrivateServer, **options) -> Iterator[PgBouncer]:
    """A PgBouncer in front of `private_server` (start_pgbouncer's options), stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="orion-test-pgbouncer-"))
    bouncer = start_pgbouncer(private_server, folder, **options)
    try:
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def pooled_and_direct(
    private_server: PrivateServer, bouncer: PgBouncer, project: Path
) -> Iterator[tuple[Databases, Databases]]:
    """Three databases reached through `bouncer`, and three reached directly, on one server; both
    run the CLI in `project`, a copy of the fixture project."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    copy_project(project, FIXTURE_PROJECT)
    pooled = Databases(server_url=bouncer.url("postgres"), prefix=prefix, cwd=project)
    direct = Databases(server_url=private_server.url(), prefix=f"{prefix}_direct", cwd=project)
    names = [f"{d.prefix}_{db.default_dbname}" for d in (pooled, direct) for db in DATABASES.values()]
    for name in names:
        run_sql(private_server.url(), f'CREATE DATABASE "{name}"')
    try:
        yield pooled, direct
    finally:
        for name in names:
            run_sql(private_server.url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
