"""First contact: a wrong Python is named before anything is built, a .venv of the wrong Python is
rebuilt, pip's noise goes to a log shown only on failure, and a configured server that is not
running is named with where its URL came from."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_make import make, make_error
from support import ROOT, Databases
from test_bad_inputs import one_line_error


def old_python() -> str | None:
    """A Python older than 3.11 on this machine, if any (pyenv keeps several)."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (10, 9, 8)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0]*/bin/python3.1[0]")))
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[89]*/bin/python3.[89]")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info < (3, 11))"], capture_output=True)
        if probe.returncode == 0 and probe.stdout.strip() == b"True":
            return candidate
    return None


OLD_PYTHON = old_python()
needs_old_python = pytest.mark.skipif(OLD_PYTHON is None, reason="no Python older than 3.11 on this machine")


def scratch_project(tmp_path: Path, pyproject: str = "[project\n") -> Path:
    """A folder with the project's venv script and a pyproject.toml (by default one pip rejects
    at once, without reaching any package index)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "venv.sh", tmp_path / "scripts" / "venv.sh")
    (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def venv_script(project: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DBMIGRATE_")}
    environment.update(env)
    return subprocess.run(
        ["sh", str(project / "scripts" / "venv.sh")], env=environment, capture_output=True, text=True, timeout=300
    )


@needs_old_python
def test_a_python_too_old_is_named_before_anything_is_built(tmp_path: Path):
    project = scratch_project(tmp_path)
    result = venv_script(project, DBMIGRATE_PYTHON=OLD_PYTHON, DBMIGRATE_PYTHON_SET="1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "this project needs Python 3.11 or newer" in lines[0] and "PYTHON=" in lines[0]
    assert not (project / ".venv").exists()


@needs_old_python
def test_make_with_a_python_too_old_leaves_the_venv_alone(dbs: Databases):
    before = (ROOT / ".venv" / "pyvenv.cfg").read_text()
    line = make_error(make(dbs, "venv", f"PYTHON={OLD_PYTHON}"), "needs Python 3.11 or newer")
    assert line.startswith("error: ")
    assert (ROOT / ".venv" / "pyvenv.cfg").read_text() == before


@needs_old_python
def test_a_venv_of_the_wrong_python_is_rebuilt_and_a_failed_install_shows_its_log(tmp_path: Path):
    project = scratch_project(tmp_path)
    subprocess.run([OLD_PYTHON, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    result = venv_script(project, DBMIGRATE_PYTHON=sys.executable, DBMIGRATE_PYTHON_SET="1")
    assert (
        "rebuilding .venv: it has Python 3.1" in result.stderr or "rebuilding .venv: it has Python 3." in result.stderr
    )
    assert "creating .venv with" in result.stderr and "installing the pinned dependencies" in result.stderr
    rebuilt = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
    )
    assert rebuilt.stdout.strip() == "True"
    # pyproject.toml does not parse: the install fails, and only then is pip's log shown.
    assert result.returncode == 1
    assert "error: installing the dependencies failed" in result.stderr and ".venv/install.log" in result.stderr
    assert (project / ".venv" / "install.log").read_text().strip()
    assert not (project / ".venv" / ".installed-stamp").exists()


def test_an_installed_venv_is_not_rebuilt_or_reinstalled(tmp_path: Path):
    project = scratch_project(tmp_path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    (project / ".venv" / ".installed-stamp").touch()
    result = venv_script(project, DBMIGRATE_PYTHON=sys.executable, DBMIGRATE_PYTHON_SET="1")
    assert result.returncode == 0 and result.stderr == ""


def test_the_makefile_installs_through_the_script():
    makefile = (ROOT / "Makefile").read_text()
    assert "@sh scripts/venv.sh" in makefile and "pip install" not in makefile


# ---- 12. A configured server that is not running -----------------------------------------------


def run_in_project(project: Path, dbs: Databases, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in dbs.env.items() if not k.endswith("DATABASE_URL")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "dbmigrate", *args], cwd=project, env=environment, capture_output=True, text=True
    )


STOPPED = "postgresql://orion:orion_dev_password@127.0.0.1:1/orion"


def test_a_stopped_server_named_in_env_file_says_so(project: Path, dbs: Databases):
    (project / ".env").write_text(f"DATABASE_URL={STOPPED}\n")
    line = one_line_error(run_in_project(project, dbs, "migrate", "orion"), "cannot reach PostgreSQL at 127.0.0.1:1")
    assert "DATABASE_URL from .env" in line and "docker compose up -d" in line and "remove the database URLs" in line
    assert "orion_dev_password" not in line


def test_the_per_environment_file_and_derived_urls_are_named(project: Path, dbs: Databases):
    (project / ".env.test").write_text(f"DATABASE_URL={STOPPED}\n")
    line = one_line_error(run_in_project(project, dbs, "migrate", "rfq"), "127.0.0.1:1/orion_rfq")
    assert "RFQ_DATABASE_URL is unset, so DATABASE_URL's server is used (DATABASE_URL from .env.test)" in line


def test_a_stopped_server_from_the_environment_says_so(project: Path, dbs: Databases):
    line = one_line_error(run_in_project(project, dbs, "migrate", "orion", DATABASE_URL=STOPPED), "127.0.0.1:1")
    assert "DATABASE_URL from the environment" in line


# ---- 8. The embedded server says it is starting, and how to stop it -----------------------------


def test_the_first_command_says_it_starts_the_embedded_server_and_how_to_stop_it(tmp_path: Path, dbs: Databases):
    environment = {k: v for k, v in dbs.env.items() if not k.endswith("DATABASE_URL")}
    environment["ORION_PGDATA"] = str(tmp_path / "pgdata")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dbmigrate", *args],
            cwd=dbs.cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        first = cli("status", "orion")
        assert first.returncode == 0, first.stderr
        line = first.stderr.strip().splitlines()[0]
        assert line.startswith("initialising and starting the embedded PostgreSQL server in ")
        assert str(tmp_path / "pgdata") in line and "keeps running" in line and "make db-stop" in line
        assert "starting" not in cli("status", "orion").stderr  # already running: nothing to say
    finally:
        cli("stop")
