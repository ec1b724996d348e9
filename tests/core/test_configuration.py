"""AC1: configuration for multiple databases and environments, and the files that set them up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT, Databases, migration_ids

from dbmigrate.core import config
from dbmigrate.core.config import DATABASES, find_project_root, installed_apps_root, load_settings
from dbmigrate.core.errors import UserError


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "piccolo_conf.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in ("ORION_ENV", *(db.url_variable for db in DATABASES.values())):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_env_files_load_base_then_environment_and_real_variables_win(tmp_path: Path, clean_env):
    root = _project(
        tmp_path,
        {
            ".env": "ORION_ENV=staging\nDATABASE_URL=postgresql://a@base/orion\nRFQ_DATABASE_URL=postgresql://a@base/rfq\n",
            ".env.staging": "DATABASE_URL=postgresql://a@staging/orion\n",
        },
    )
    settings = load_settings(root)
    assert settings.environment == "staging"
    assert settings.url_for(DATABASES["orion"]) == "postgresql://a@staging/orion"
    assert settings.url_for(DATABASES["rfq"]) == "postgresql://a@base/rfq"
    clean_env.setenv("DATABASE_URL", "postgresql://a@real/orion")
    assert load_settings(root).url_for(DATABASES["orion"]) == "postgresql://a@real/orion"


def test_other_databases_live_beside_the_main_one_when_only_database_url_is_set(tmp_path: Path, clean_env):
    clean_env.setenv("DATABASE_URL", "postgresql://orion:pw@db.internal:5432/orion?sslmode=require")
    settings = load_settings(_project(tmp_path, {}))
    assert settings.url_for(DATABASES["rfq"]) == "postgresql://orion:pw@db.internal:5432/orion_rfq?sslmode=require"
    assert not settings.uses_embedded_server


def test_with_no_url_anywhere_the_embedded_server_is_used(tmp_path: Path, clean_env):
    settings = load_settings(_project(tmp_path, {}))
    assert settings.uses_embedded_server and settings.environment == "development"
    assert settings.url_for(DATABASES["orion"]) is None


def test_an_unknown_orion_env_is_rejected(tmp_path: Path, clean_env):
    clean_env.setenv("ORION_ENV", "prod")
    with pytest.raises(UserError, match="unknown ORION_ENV 'prod': choose one of development, test, ci"):
        load_settings(_project(tmp_path, {}))


def test_a_malformed_url_is_a_one_line_error_without_the_password(dbs: Databases):
    dbs.extra_env["DATABASE_URL"] = "postgresql://orion:s3cret-pw@localhost:notaport/orion"
    err = dbs.cli("status", "orion", expect=1).stderr
    assert err.startswith("error: DATABASE_URL is not a valid URL") and "s3cret-pw" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_database_says_how_to_create_it(dbs: Databases, server_url: str):
    dbs.extra_env["DATABASE_URL"] = dbs.url("orion").replace(f"{dbs.prefix}_orion", f"{dbs.prefix}_nowhere")
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert f"database '{dbs.prefix}_nowhere' does not exist" in err and "make db-create" in err


def test_create_and_drop_databases(dbs: Databases):
    dropped = dbs.cli("drop-databases").stdout
    assert dropped.strip() == f"dropped {dbs.prefix}_orion, {dbs.prefix}_orion_rfq, {dbs.prefix}_orion_marketdata"
    err = dbs.cli("migrate", "orion", expect=1).stderr
    assert f"database '{dbs.prefix}_orion' does not exist" in err and "make db-create" in err
    out = dbs.cli("create-databases").stdout
    assert f"{dbs.prefix}_orion_rfq" in out
    dbs.cli("migrate", "all")


def test_unix_socket_urls_work(dbs: Databases):
    if "host=/" not in dbs.url("orion"):
        pytest.skip("the test server is not on a Unix socket")
    dbs.cli("migrate", "orion")
    assert dbs.applied("orion") == migration_ids("orion")


def test_docker_compose_runs_postgres_18_with_the_storys_credentials_and_three_databases():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:18"
    assert "orion-pgdata-18:/var/lib/postgresql" in postgres["volumes"]  # where 18's image keeps its data
    assert postgres["environment"] == {
        "POSTGRES_USER": "orion",
        "POSTGRES_PASSWORD": "orion_dev_password",
        "POSTGRES_DB": "orion",
    }
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    init_mount = next(v for v in postgres["volumes"] if v.endswith(":/docker-entrypoint-initdb.d:ro"))
    init_sql = "".join(p.read_text() for p in (ROOT / init_mount.split(":")[0]).glob("*.sql"))
    for db in DATABASES.values():
        assert db.default_dbname == "orion" or f"CREATE DATABASE {db.default_dbname}" in init_sql
    example = (ROOT / ".env.example").read_text()
    for db in DATABASES.values():
        assert f"{db.url_variable}=postgresql://orion:orion_dev_password@localhost:5432/{db.default_dbname}" in example


def test_make_help_lists_every_story_command():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in (
        "db-migrate",
        "db-migrate-down",
        "db-migrate-create",
        "db-migrate-status",
        "db-migrate-all",
        "db-create",
        "db-drop",
        "db-stop",
        "test",
        "lint",
    ):
        assert f"make {target} " in out


def test_make_targets_and_nox_sessions_alias_the_cli(dbs: Databases):
    subprocess.run(["make", "-s", "db-migrate-rfq"], cwd=dbs.cwd, env=dbs.env, check=True, capture_output=True)
    assert dbs.applied("rfq") == migration_ids("rfq")
    out = subprocess.run(
        ["make", "-s", "db-migrate-status", "DB=rfq"],
        cwd=dbs.cwd,
        env=dbs.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "[x] 001_initial_schema" in out
    sessions = subprocess.run(
        [sys.executable, "-m", "nox", "-l"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for session in (
        "db_migrate",
        "db_down",
        "db_create",
        "db_status",
        "db_migrate_all",
        "db_migrate_orion",
        "db_migrate_rfq",
        "db_migrate_marketdata",
        "db_create_databases",
        "db_drop_databases",
    ):
        assert f"{session} ->" in sessions


def test_the_project_is_the_nearest_checkout_else_the_installed_apps_never_a_services_own_piccolo_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ORION_PROJECT_ROOT", raising=False)
    checkout = tmp_path / "checkout"
    (checkout / "orion" / "piccolo_migrations").mkdir(parents=True)
    (checkout / "piccolo_conf.py").write_text("")
    (checkout / "orion" / "deep").mkdir()
    assert find_project_root(checkout / "orion" / "deep") == checkout
    service = tmp_path / "service"  # a Piccolo project of its own: its piccolo_conf.py is not ours
    service.mkdir()
    (service / "piccolo_conf.py").write_text("DB = None\n")
    # This .venv installs the package editable, so the installed apps are this checkout's.
    assert find_project_root(service) == installed_apps_root() == ROOT


def test_with_no_checkout_and_no_installed_apps_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ORION_PROJECT_ROOT", raising=False)
    monkeypatch.setattr(config, "installed_apps_root", lambda: None)
    with pytest.raises(UserError) as error:
        find_project_root(tmp_path)
    assert str(error.value) == (
        f"no Orion migrations project in {tmp_path.resolve()} or above (piccolo_conf.py beside the apps' folders), "
        "and the apps are not installed: run this from the project folder, or `pip install` orion-dbmigrate"
    )
    monkeypatch.setenv("ORION_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(UserError, match=f"ORION_PROJECT_ROOT={tmp_path} is not an Orion migrations project"):
        find_project_root()


def test_every_cli_command_has_a_make_target_and_a_nox_session():
    """The Makefile and the noxfile are thin aliases: each command of the CLI is reachable from both."""
    import re

    from dbmigrate.cli.make import _subparsers
    from dbmigrate.cli.parser import build_parser

    commands = set(_subparsers(build_parser()))
    makefile = (ROOT / "Makefile").read_text()
    noxfile = (ROOT / "noxfile.py").read_text()
    in_make = set(re.findall(r"@\$\(CLI\) ([a-z-]+)", makefile))
    in_nox = set(re.findall(r'_cli\(session, "([a-z-]+)"', noxfile))
    assert commands - in_make == set()
    assert commands - in_nox == set()
