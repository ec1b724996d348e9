"""A private PostgreSQL cluster with password authentication on TCP, for the tests that need what
the embedded server (trust auth, Unix socket only) cannot give: a wrong password, a TCP URL, a
server stopped in the middle of a run.

It uses Debian's PostgreSQL 15 binaries when installed (a second build of that version), else the
project's pinned PostgreSQL 15 build (dbmigrate/core/releases.py). PostgreSQL refuses to run as root, so
under root the cluster belongs to the `postgres` system user, as the embedded server's does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dbmigrate.server import embedded
from dbmigrate.server import install as postgres_install

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
USER = "orion"


def binaries() -> Path:
    configured = os.environ.get("ORION_TEST_PG_BIN")
    if configured:
        return Path(configured)
    if (DEBIAN_15 / "initdb").exists():
        return DEBIAN_15
    return postgres_install.ensure_installed(15)


def _system_user() -> str | None:
    owner = embedded.server_owner()  # creates the `postgres` system user under root if missing
    return pwd.getpwuid(owner[0]).pw_name if owner else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivateServer:
    bin_dir: Path
    data_dir: Path
    port: int
    password: str
    run_as: str | None

    def url(self, dbname: str = "postgres", password: str | None = None) -> str:
        secret = quote(password or self.password, safe="")
        return f"postgresql://{USER}:{secret}@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            user=self.run_as,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        self._pg_ctl("-w", "-o", options, "-l", str(self.data_dir / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        return subprocess.run(
            [str(self.bin_dir / "psql"), "-XqAt", "-v", "ON_ERROR_STOP=1", "-d", self.url(dbname), "-c", sql],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout


def start_private_server(base: Path, password: str) -> PrivateServer:
    run_as = _system_user()
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if run_as:
        shutil.chown(base, run_as)
        shutil.chown(pwfile, run_as)
        os.chmod(base, 0o700)
    bin_dir = binaries()
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        user=run_as,
        capture_output=True,
        timeout=120,
    )
    server = PrivateServer(bin_dir=bin_dir, data_dir=data_dir, port=_free_port(), password=password, run_as=run_as)
    server.start()
    return server
