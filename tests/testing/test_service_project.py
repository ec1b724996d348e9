"""A service's day, outside this repository (tests/fixtures/service): it pip-installs the package,
imports orion's tables, and runs its own tests with the plugin in parallel, each test on a fresh
database its tables are bound to, never the development database its piccolo_conf.py names; and a
run, finished or interrupted with Ctrl-C, leaves no database, no server and no /dev/shm data behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from support import ROOT, Databases, interrupted

from dbmigrate.core.releases import DEFAULT_MAJOR
from dbmigrate.server import embedded

SERVICE = Path(__file__).resolve().parents[1] / "fixtures" / "service"
# What `pip install <this repository>` builds the package from.
PACKAGE_FILES = ["pyproject.toml", "dbmigrate", "orion", "rfq", "marketdata", "common"]
DEVELOPMENT_TENANTS = ("Dev One", "Dev Two", "Dev Three")


def make_service_venv(folder: Path) -> Path:
    """A venv of the service's own with the package pip-installed from a copy of this repository's
    files (no network: the dependencies are the project's .venv's, seen through a .pth file)."""
    source = folder / "source"
    source.mkdir()
    for name in PACKAGE_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    venv = folder / "venv"  # pip and setuptools too come from the .venv (its setuptools builds wheels)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    install += ["--no-index", "--ignore-installed", "--disable-pip-version-check", str(source)]
    result = subprocess.run(install, capture_output=True, text=True, timeout=600, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def service_env(folder: Path, development_url: str, pgdata: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PYTEST_", "PICCOLO_"))}
    env = {k: v for k, v in env.items() if not k.endswith("DATABASE_URL") and k != "PYTHONPATH"}
    return {
        **env,
        "DATABASE_URL": development_url,  # as a service's shell or .env has it: the plugin must ignore it
        "QUOTE_SERVICE_DATABASE_URL": development_url,  # the service's piccolo_conf.py
        "QUOTE_SERVICE_RECORD": str(folder / "record.txt"),
        "ORION_PGDATA": str(pgdata),  # a test cluster of this test's own
        "ORION_PG_CACHE": str(ROOT / ".venv" / "orion-postgresql"),  # the binaries make venv installed
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_a_service_installs_the_package_and_tests_on_bound_databases_leaving_nothing_behind(
    dbs: Databases, tmp_path: Path
):
    dbs.cli("migrate", "orion")  # the development database, with tenants in it
    for name in DEVELOPMENT_TENANTS:
        dbs.sql("orion", "INSERT INTO tenants (name) VALUES ($1)", name)
    folder = Path(tempfile.mkdtemp(prefix="orion-service-"))  # outside the repository and its tmp_path
    pgdata = folder / "pgdata"
    cluster = embedded.data_dir_for_tests(pgdata, DEFAULT_MAJOR)
    try:
        python = make_service_venv(folder)
        service = folder / "quote-service"
        shutil.copytree(SERVICE, service)
        env = service_env(folder, dbs.url("orion"), pgdata)
        pytest_command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q"]

        result = subprocess.run(pytest_command, cwd=service, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "5 passed" in result.stdout

        records = [line.split() for line in (folder / "record.txt").read_text().splitlines()]
        assert len(records) == 4  # the four tests that asked for orion_db
        databases = {database for _, database, _ in records}
        assert len(databases) == 4 and all(d.startswith("dbmigrate_clone_orion_") for d in databases)
        site_packages = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert {origin for _, _, origin in records} == {str(Path(site_packages) / "orion" / "__init__.py")}
        names = [r["name"] for r in dbs.sql("orion", "SELECT name FROM tenants ORDER BY created_at, name")]
        assert sorted(names) == sorted(DEVELOPMENT_TENANTS)  # the development database: untouched
        assert not cluster.parent.exists()  # the session started the test cluster: stopped and removed

        # The CLI finds the installed migrations too, and will not write into them.
        cli = [str(python), "-m", "dbmigrate"]
        sql = subprocess.run([*cli, "sql", "001", "orion"], cwd=service, env=env, capture_output=True, text=True)
        assert sql.returncode == 0, sql.stderr
        assert sql.stdout.startswith(
            "-- orion 001_initial_schema (orion/piccolo_migrations/orion_001_initial_schema.py)"
        )
        assert "CREATE TABLE tenants" in sql.stdout
        create = subprocess.run([*cli, "create", "add_x"], cwd=service, env=env, capture_output=True, text=True)
        assert create.returncode == 1 and "not a checkout: run it in a checkout of orion-dbmigrate" in create.stderr

        (service / "tests" / "test_reference.py").write_text("def test_venues(marketdata_reference_db):\n    pass\n")
        reference = subprocess.run(
            [*pytest_command, "tests/test_reference.py"], cwd=service, env=env, capture_output=True, text=True
        )
        assert reference.returncode == 1  # the package carries no seed files: said, not an empty table
        assert (
            "the marketdata reference fixtures load seeds/reference/, which the installed package" in reference.stdout
        )
        (service / "tests" / "test_reference.py").unlink()

        (service / "tests" / "test_slow.py").write_text(
            "import pathlib, time\n\n\n"
            "def test_slow(orion_db):\n"
            "    pathlib.Path('started').write_text(orion_db.name)\n"
            "    time.sleep(60)\n"
        )
        out = interrupted(pytest_command + ["tests/test_slow.py"], service, env)
        assert "Traceback" not in out and "Event loop is closed" not in out
        assert len([line for line in out.splitlines() if line.strip()]) <= 6, out  # pytest's own few lines
        assert not cluster.parent.exists()
    finally:
        embedded.remove_test_cluster(cluster)
        embedded.remove_test_cluster_files(cluster)
        shutil.rmtree(folder, ignore_errors=True)
