"""The tools users would pick instead of dbmigrate, installed by the bench into a cache of its own.

bench/.cache/ (ignored by git, outside the project's dependencies) holds, at pinned versions:

  * node/: dbmate (the npm package ships dbmate's Go binary, through a per-platform optional
    dependency) and node-pg-migrate with the `pg` driver it needs;
  * alembic/: a virtualenv with Alembic, SQLAlchemy and psycopg2-binary.

Each is installed once (a stamp file records the pins) with the ordinary clients, npm and pip.
A tool that cannot be installed is a `Peer` with `missing` set to the reason, and its rows say so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CACHE = Path(__file__).resolve().parent / ".cache"
NPM_PINS = {"dbmate": "2.36.0", "node-pg-migrate": "9.0.0", "pg": "8.23.1"}
PIP_PINS = {"alembic": "1.20.1", "SQLAlchemy": "2.1.9", "psycopg2-binary": "2.9.13"}
INSTALL_TIMEOUT = 600


@dataclass
class Peer:
    name: str
    version: str = ""
    missing: str = ""  # why it is not installed; "" when it is
    installed_with: str = ""  # what it took, for the report

    @property
    def available(self) -> bool:
        return not self.missing


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = INSTALL_TIMEOUT) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or [""]
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {result.returncode}: {tail[0][:200]}")
    return result.stdout


def _stamped(folder: Path, pins: dict[str, str]) -> bool:
    stamp = folder / ".bench-pins.json"
    return stamp.exists() and json.loads(stamp.read_text()) == pins


def _stamp(folder: Path, pins: dict[str, str]) -> None:
    (folder / ".bench-pins.json").write_text(json.dumps(pins))


def install_node(cache: Path = CACHE) -> tuple[Peer, Peer]:
    """dbmate and node-pg-migrate from npm into cache/node (one `npm install` of pinned versions)."""
    folder = cache / "node"
    how = "npm install " + " ".join(f"{k}@{v}" for k, v in NPM_PINS.items())
    dbmate, npm_migrate = Peer("dbmate", installed_with=how), Peer("node-pg-migrate", installed_with=how)
    try:
        if not shutil.which("npm") or not shutil.which("node"):
            raise RuntimeError("node and npm are not on PATH")
        if not _stamped(folder, NPM_PINS):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            package = {"name": "dbmigrate-bench-peers", "private": True, "dependencies": NPM_PINS}
            (folder / "package.json").write_text(json.dumps(package, indent=2))
            _run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder)
            _stamp(folder, NPM_PINS)
    except Exception as error:  # noqa: BLE001 - a peer that cannot be installed is reported, not fatal
        dbmate.missing = npm_migrate.missing = f"not installed: {error}"
        return dbmate, npm_migrate
    try:
        dbmate.version = _run([str(dbmate_binary(cache)), "--version"], timeout=30).split()[-1]
    except Exception as error:  # noqa: BLE001
        dbmate.missing = f"not installed: its binary does not run ({error})"
    try:
        manifest = folder / "node_modules" / "node-pg-migrate" / "package.json"
        npm_migrate.version = json.loads(manifest.read_text())["version"]
        _run([str(node_pg_migrate_bin(cache)), "--version"], timeout=30)
    except Exception as error:  # noqa: BLE001
        npm_migrate.missing = f"not installed: {error}"
    return dbmate, npm_migrate


def install_alembic(cache: Path = CACHE) -> Peer:
    """Alembic, SQLAlchemy and psycopg2-binary from PyPI into a virtualenv of their own."""
    folder = cache / "alembic"
    how = "python -m venv; pip install " + " ".join(f"{k}=={v}" for k, v in PIP_PINS.items())
    peer = Peer("Alembic", installed_with=how)
    try:
        if not _stamped(folder, PIP_PINS):
            shutil.rmtree(folder, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(folder)])
            pins = [f"{k}=={v}" for k, v in PIP_PINS.items()]
            _run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins])
            _stamp(folder, PIP_PINS)
        peer.version = _run([str(alembic_bin(cache)), "--version"], timeout=60).split()[-1]
    except Exception as error:  # noqa: BLE001
        peer.missing = f"not installed: {error}"
    return peer


def install_all(cache: Path = CACHE) -> dict[str, Peer]:
    cache.mkdir(parents=True, exist_ok=True)
    dbmate, npm_migrate = install_node(cache)
    return {"dbmate": dbmate, "node-pg-migrate": npm_migrate, "Alembic": install_alembic(cache)}


def dbmate_binary(cache: Path = CACHE) -> Path:
    """The Go binary itself (node_modules/.bin/dbmate is a node launcher that would bill node's start)."""
    for path in sorted((cache / "node" / "node_modules" / "@dbmate").glob("*/bin/dbmate")):
        return path
    return cache / "node" / "node_modules" / ".bin" / "dbmate"


def node_pg_migrate_bin(cache: Path = CACHE) -> Path:
    return cache / "node" / "node_modules" / ".bin" / "node-pg-migrate"


def alembic_bin(cache: Path = CACHE) -> Path:
    return cache / "alembic" / "bin" / "alembic"


def alembic_python(cache: Path = CACHE) -> Path:
    return cache / "alembic" / "bin" / "python"


# ---- connection URLs: every tool reaches the same server, on its Unix socket or over TCP --------


def _parts(url: str) -> tuple[str, str, str, dict[str, str]]:
    """(user, host or socket folder, port, dbname) of a libpq URL such as the embedded server's
    `postgresql://postgres@/db?host=/socket/dir&port=5432`."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.pop("host", "")
    port = str(parts.port or query.pop("port", "5432"))
    query.pop("host", None)
    query.pop("port", None)
    user = parts.username or "postgres"
    return user, host, port, {"dbname": parts.path.lstrip("/"), **query}


def dbmate_url(url: str) -> str:
    """dbmate (lib/pq) takes a socket folder as `socket=`; sslmode must be said."""
    user, host, port, rest = _parts(url)
    dbname = rest.pop("dbname")
    if host.startswith("/"):
        query = {"socket": host, "port": port, "sslmode": "disable", **rest}
        return urlunsplit(("postgres", f"{user}@", f"/{dbname}", urlencode(query), ""))
    return urlunsplit(
        ("postgres", f"{user}@{host}:{port}", f"/{dbname}", urlencode({"sslmode": "disable", **rest}), "")
    )


def node_url(url: str) -> str:
    """node-postgres (pg-connection-string) reads `host=` in the query as the socket folder."""
    user, host, port, rest = _parts(url)
    dbname = rest.pop("dbname")
    if host.startswith("/"):
        return urlunsplit(("postgresql", f"{user}@", f"/{dbname}", urlencode({"host": host, "port": port}), ""))
    return urlunsplit(("postgresql", f"{user}@{host}:{port}", f"/{dbname}", "", ""))


def sqlalchemy_url(url: str) -> str:
    user, host, port, rest = _parts(url)
    dbname = rest.pop("dbname")
    if host.startswith("/"):
        query = urlencode({"host": host, "port": port})
        return urlunsplit(("postgresql+psycopg2", f"{user}@", f"/{dbname}", query, ""))
    return urlunsplit(("postgresql+psycopg2", f"{user}@{host}:{port}", f"/{dbname}", "", ""))


def env_without_database(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and not k.startswith("DBMATE_")}
    return {**env, **extra}
