"""Nox sessions: the same commands as the Makefile, for those who prefer `nox -s db_migrate -- rfq`.

Each session is an alias over the dbmigrate CLI, run with the project's .venv (created by
`make venv` when missing). Per-database sessions come from the one list in dbmigrate/config.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))
from dbmigrate.core.config import DATABASES  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]


def _cli(session: nox.Session, *args: str) -> None:
    session.run("make", "-s", "venv", external=True)
    session.run(PY, "-m", "dbmigrate", *args, external=True)


@nox.session
def db_migrate(session: nox.Session) -> None:
    """Apply pending migrations: nox -s db_migrate -- [orion|rfq|marketdata|all]"""
    _cli(session, "migrate", *session.posargs)


@nox.session
def db_down(session: nox.Session) -> None:
    """Roll back the last applied migration: nox -s db_down -- [db]"""
    _cli(session, "down", *session.posargs)


@nox.session
def db_create(session: nox.Session) -> None:
    """Write the next migration: nox -s db_create -- NAME [db] [--auto]"""
    _cli(session, "create", *session.posargs)


@nox.session
def db_status(session: nox.Session) -> None:
    """Show applied and pending migrations: nox -s db_status -- [db]"""
    _cli(session, "status", *session.posargs)


@nox.session
def db_sql(session: nox.Session) -> None:
    """Print a migration's SQL with no database: nox -s db_sql -- 003 [db] [--down]"""
    _cli(session, "sql", *session.posargs)


@nox.session
def db_renumber(session: nox.Session) -> None:
    """Move an unapplied migration after the last one: nox -s db_renumber -- 004_add_x [db]"""
    _cli(session, "renumber", *session.posargs)


@nox.session
def db_repair(session: nox.Session) -> None:
    """Accept changed or deleted migration files: nox -s db_repair -- [db] [--confirm db]"""
    _cli(session, "repair", *session.posargs)


@nox.session
def db_baseline(session: nox.Session) -> None:
    """Mark a database migrated up to a version: nox -s db_baseline -- db --to 003"""
    _cli(session, "baseline", *session.posargs)


@nox.session
def db_migrate_all(session: nox.Session) -> None:
    """Migrate every database, concurrently."""
    _cli(session, "migrate", "all")


def _migrate_one(name: str):
    def session_function(session: nox.Session) -> None:
        _cli(session, "migrate", name)

    session_function.__doc__ = f"Migrate the {name} database."
    return session_function


for _name in DATABASES:
    nox.session(name=f"db_migrate_{_name}")(_migrate_one(_name))


@nox.session
def db_verify(session: nox.Session) -> None:
    """Prove migrations on a scratch database: nox -s db_verify -- [db] [--base REF]"""
    _cli(session, "verify", *session.posargs)


@nox.session
def db_rehearse(session: nox.Session) -> None:
    """Rehearse the pending migrations under a workload: nox -s db_rehearse -- [db] [--rows 1000000] [--max-block 1s]"""
    _cli(session, "rehearse", *session.posargs)


@nox.session
def db_schema_dump(session: nox.Session) -> None:
    """Regenerate schema/<db>.sql: nox -s db_schema_dump -- [db]"""
    _cli(session, "schema-dump", *session.posargs)


@nox.session
def db_seed(session: nox.Session) -> None:
    """Load seed data: nox -s db_seed -- [db]"""
    _cli(session, "seed", *session.posargs)


@nox.session
def db_reset(session: nox.Session) -> None:
    """Drop, create, migrate and seed: nox -s db_reset -- [db] [--confirm db]"""
    _cli(session, "reset", *session.posargs)


@nox.session
def db_create_databases(session: nox.Session) -> None:
    """Create the databases that do not exist: nox -s db_create_databases -- [db]"""
    _cli(session, "create-databases", *session.posargs)


@nox.session
def db_drop_databases(session: nox.Session) -> None:
    """Drop the databases: nox -s db_drop_databases -- [db]"""
    _cli(session, "drop-databases", *session.posargs)


@nox.session
def db_shell(session: nox.Session) -> None:
    """psql on one database: nox -s db_shell -- [db]"""
    _cli(session, "shell", *session.posargs)


@nox.session
def db_import(session: nox.Session) -> None:
    """Write another tool's migrations as a database's: nox -s db_import -- [db] --from FOLDER [--format F]"""
    _cli(session, "import", *session.posargs)


@nox.session
def db_migrate_fleet(session: nox.Session) -> None:
    """Migrate every database of a fleet: nox -s db_migrate_fleet -- --targets FILE [--parallel 8]"""
    _cli(session, "migrate-fleet", *session.posargs)


@nox.session
def db_stop(session: nox.Session) -> None:
    """Stop the embedded PostgreSQL server."""
    _cli(session, "stop")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.run("make", "-s", "test", external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff."""
    session.run("make", "-s", "lint", external=True)
