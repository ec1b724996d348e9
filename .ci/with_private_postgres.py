"""Run a command against a private PostgreSQL cluster (Debian's 15 when installed): `.ci/run` uses
it to prove the migrations on a second server version. Usage: with_private_postgres.py CMD..."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from private_server import start_private_server  # noqa: E402

from dbmigrate.core.config import DATABASES  # noqa: E402


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="orion-ci-pg-"))
    server = start_private_server(base, "ci-password")
    try:
        print(f"private PostgreSQL: {server.psql('SHOW server_version').strip()} ({server.bin_dir})", flush=True)
        env = {**os.environ, **{db.url_variable: server.url(db.default_dbname) for db in DATABASES.values()}}
        subprocess.run([sys.executable, "-m", "dbmigrate", "create-databases"], env=env, cwd=ROOT, check=True)
        return subprocess.run(sys.argv[1:], env=env, cwd=ROOT).returncode
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
