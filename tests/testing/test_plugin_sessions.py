"""A service's pytest session with the plugin: Ctrl-C ends it in pytest's own few lines and drops
the interrupted test's database; `make db-stop` stops the test cluster and removes its data from
/dev/shm (unless a session is using it); a first run says which PostgreSQL it downloads, how big,
and where, on the terminal rather than into pytest's captured output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from support import Databases, interrupted, run_sql

from dbmigrate.core.releases import DEFAULT_MAJOR, PACKAGE, RELEASES
from dbmigrate.server import embedded

SLOW_TEST = (
    "import pathlib, time\n\n\n"
    "def test_slow(orion_db):\n"
    "    pathlib.Path('started').write_text(orion_db.name)\n"
    "    time.sleep(60)\n"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PYTEST_"))}
    env = {k: v for k, v in env.items() if not k.endswith("DATABASE_URL")}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def test_ctrl_c_in_a_test_ends_in_pytests_few_lines_and_drops_the_tests_database(tmp_path: Path):
    pgdata = Path(tempfile.mkdtemp(prefix="orion-plugin-"))
    cluster = embedded.data_dir_for_tests(pgdata, DEFAULT_MAJOR)
    try:
        server, _ = embedded.ensure_running(cluster, DEFAULT_MAJOR, for_tests=True)  # running: the session keeps it
        (tmp_path / "test_slow.py").write_text(SLOW_TEST)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "test_slow.py"]
        out = interrupted(command, tmp_path, _env(ORION_PGDATA=str(pgdata)))
        assert "Traceback" not in out and "Event loop is closed" not in out
        assert len([line for line in out.splitlines() if line.strip()]) <= 6, out
        interrupted_database = (tmp_path / "started").read_text()
        assert interrupted_database.startswith("dbmigrate_clone_orion_")
        clones = run_sql(
            server.url("postgres"), "SELECT datname FROM pg_database WHERE datname LIKE 'dbmigrate_clone%'"
        )
        assert clones == []  # neither the interrupted test's nor the pool's ready ones
        assert embedded.find_running(cluster) is not None  # found running, left running
    finally:
        embedded.remove_test_cluster(cluster)
        embedded.remove_test_cluster_files(cluster)
        shutil.rmtree(pgdata, ignore_errors=True)


def test_make_db_stop_stops_the_test_cluster_and_removes_its_data_unless_a_session_uses_it(dbs: Databases):
    pgdata = Path(tempfile.mkdtemp(prefix="orion-plugin-"))
    cluster = embedded.data_dir_for_tests(pgdata, DEFAULT_MAJOR)
    env = _env(ORION_PGDATA=str(pgdata))
    try:
        embedded.ensure_running(cluster, DEFAULT_MAJOR, for_tests=True)
        embedded.sessions_file(cluster).write_text(json.dumps({"pids": [os.getpid()]}))  # a session: this one
        kept = subprocess.run(["make", "-s", "db-stop"], cwd=dbs.cwd, env=env, capture_output=True, text=True)
        assert kept.returncode == 0, kept.stderr
        assert f"left the test cluster in {cluster} running: pytest (pid {os.getpid()}) is using it" in kept.stdout
        assert embedded.find_running(cluster) is not None

        embedded.sessions_file(cluster).write_text(json.dumps({"pids": []}))
        stopped = subprocess.run(["make", "-s", "db-stop"], cwd=dbs.cwd, env=env, capture_output=True, text=True)
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the test cluster and removed its data, {cluster} (" in stopped.stdout
        assert not cluster.parent.exists()  # data, lock and session files, and the folder in /dev/shm
    finally:
        embedded.remove_test_cluster(cluster)
        embedded.remove_test_cluster_files(cluster)
        shutil.rmtree(pgdata, ignore_errors=True)


def test_a_first_run_says_on_the_terminal_which_postgresql_it_downloads_how_big_and_where(tmp_path: Path):
    cache = tmp_path / "cache"  # no binaries there yet: the plugin must install them
    (tmp_path / "test_db.py").write_text("def test_db(orion_db):\n    pass\n")
    env = _env(ORION_PG_CACHE=str(cache), ORION_PGDATA=str(tmp_path / "pgdata"), PIP_NO_INDEX="1")  # no network
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_db.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    version = RELEASES[DEFAULT_MAJOR]
    line = next(line for line in result.stderr.splitlines() if "downloading PostgreSQL" in line)
    assert f"{PACKAGE}=={version}" in line and "12 MB" in line and f"into {cache / version}" in line
    assert "Captured stderr" not in result.stdout  # not buried in pytest's report of the failure
    assert result.returncode != 0 and f"could not download {PACKAGE}=={version}" in result.stdout
