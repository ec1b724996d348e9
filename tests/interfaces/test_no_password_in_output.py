"""No output path shows a password: every command, run against the password-protected private server
with the password in each form a URL or a libpq connection string can carry it (percent-encoded in
the user info, in `?password=`, typed raw, in a quoted key=value string, from the environment or
from .env), with the right password and with a wrong one, never prints the password's text nor
its percent-encoded forms, on stdout or stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from private_server import USER, PrivateServer
from support import PRIVATE_SERVER_PASSWORD, ROOT, Databases

from dbmigrate.core.config import DATABASES

WRONG_PASSWORD = "wr0ng pw/with:odd@chars"  # a space: quoted in the key=value form


def _forms(password: str) -> list[str]:
    """Every spelling of `password` that must never appear."""
    return sorted({password, quote(password), quote(password, safe=""), quote(password, safe="@:/"), *password.split()})


def _conninfo_value(password: str) -> str:
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _url(form: str, port: int, dbname: str, password: str) -> str:
    if form == "userinfo, percent-encoded":
        return f"postgresql://{USER}:{quote(password, safe='')}@127.0.0.1:{port}/{dbname}"
    if form == "userinfo, raw":  # not a valid URL: "/" and "@" in the password
        return f"postgresql://{USER}:{password}@127.0.0.1:{port}/{dbname}"
    if form == "query parameter":
        return f"postgres://{USER}@127.0.0.1:{port}/{dbname}?sslmode=disable&password={quote(password, safe='')}"
    assert form.startswith("key=value")
    return f"host=127.0.0.1 port={port} user={USER} password={_conninfo_value(password)} dbname={dbname}"


FORMS = ["userinfo, percent-encoded", "userinfo, raw", "query parameter", "key=value", "key=value in .env"]

# Every command (and the variants that print differently), in an order that leaves each one
# something to do; each is (arguments, whether it succeeds when the password is right).
COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("create-databases", "all"), True),
    (("status", "all"), True),
    (("status", "all", "--format", "json"), True),
    (("migrate", "orion", "--dry-run"), True),
    (("migrate", "all"), True),
    (("down", "orion", "--dry-run"), True),
    (("down", "orion"), True),
    (("baseline", "orion", "--to", "001"), False),  # orion still has 001 applied: refused, saying so
    (("repair", "all"), True),
    (("migrate", "orion"), True),
    (("seed", "all"), True),
    (("shell", "orion"), True),
    (("verify", "rfq"), True),
    (("reset", "marketdata"), True),
    (("migrate-fleet", "--targets", "fleet.txt"), True),
    (("migrate-fleet", "--targets", "fleet.txt", "--dry-run"), True),
    (("status", "--targets", "fleet.txt"), True),
    (("status", "--targets", "fleet.txt", "--format", "json"), True),
    (("baseline", "orion", "--from-tool", "dbmate"), False),  # no dbmate table there: refused
    (("drop-databases", "marketdata"), True),
    (("create-databases", "marketdata"), True),
    (("import", "rfq", "--from", str(ROOT / "tests" / "histories" / "dbmate")), True),
]


def _run(dbs: Databases, args: tuple[str, ...], unset: set[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dbmigrate", *args],
        cwd=dbs.cwd,
        env={key: value for key, value in dbs.env.items() if key not in unset},
        input="SELECT current_database();\n" if args[0] == "shell" else None,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("right", [True, False], ids=["right password", "wrong password"])
@pytest.mark.parametrize("form", FORMS)
def test_no_command_prints_the_password_in_any_form(tcp_dbs: Databases, private_server: PrivateServer, form, right):
    password = PRIVATE_SERVER_PASSWORD if right else WRONG_PASSWORD
    urls = {
        db.url_variable: _url(form, private_server.port, tcp_dbs.url(db.name).rsplit("/", 1)[1], password)
        for db in DATABASES.values()
    }
    unset: set[str] = set()
    if form.endswith("in .env"):
        (tcp_dbs.cwd / ".env").write_text("".join(f'{name}="{url}"\n' for name, url in urls.items()))
        unset = set(urls)  # not in the environment: .env's values count
    else:
        tcp_dbs.extra_env.update(urls)
    fleet_form = "userinfo, percent-encoded" if form.endswith("in .env") else form
    fleet = [
        f"{db.name} {_url(fleet_form, private_server.port, tcp_dbs.url(db.name).rsplit('/', 1)[1], password)}"
        for db in DATABASES.values()
    ]
    (tcp_dbs.cwd / "fleet.txt").write_text("\n".join(fleet) + "\n")
    secrets = _forms(PRIVATE_SERVER_PASSWORD) + _forms(WRONG_PASSWORD)
    usable = right and form != "userinfo, raw"
    for args, succeeds in COMMANDS:
        result = _run(tcp_dbs, args, unset)
        output = result.stdout + result.stderr
        for secret in secrets:
            assert secret not in output, f"`{' '.join(args)}` printed {secret!r}:\n{output}"
        assert "Traceback" not in output, output
        if args[0] == "import":
            assert result.returncode == 0, output  # reads files only: the password plays no part
        elif usable:
            assert (result.returncode == 0) == succeeds, f"`{' '.join(args)}` exited {result.returncode}:\n{output}"
        else:
            assert result.returncode != 0, f"`{' '.join(args)}` succeeded with an unusable password:\n{output}"
    if usable:
        assert tcp_dbs.applied("orion") == ["001_initial_schema", "002_audit_log_append_only"]


def test_the_key_value_form_reaches_the_same_database_as_the_url(tcp_dbs: Databases, private_server: PrivateServer):
    dbname = tcp_dbs.url("orion").rsplit("/", 1)[1]
    tcp_dbs.extra_env["DATABASE_URL"] = _url("key=value", private_server.port, dbname, PRIVATE_SERVER_PASSWORD)
    for other in ("RFQ_DATABASE_URL", "MARKETDATA_DATABASE_URL"):
        tcp_dbs.extra_env[other] = ""
    result = tcp_dbs.cli("migrate", "orion")
    assert "orion: applied 002_audit_log_append_only" in result.stdout
    assert private_server.psql("SELECT count(*) FROM migration", dbname=dbname).strip() == "2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("host=127.0.0.1 password='never closed dbname=x", "the quoted value of 'password' has no closing quote"),
        ("host=127.0.0.1 password", "keyword 'password' has no '='"),
        ("host=127.0.0.1 =secret dbname=x", "has no keyword at character 16"),
    ],
)
def test_a_key_value_string_that_does_not_parse_is_refused_naming_the_form_not_the_value(
    dbs: Databases, value: str, expected: str, tmp_path: Path
):
    dbs.extra_env["DATABASE_URL"] = value
    result = dbs.cli("status", "orion", expect=1)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"DATABASE_URL is in libpq's key=value form but {expected}" in result.stderr
    assert "never closed" not in result.stderr and "secret" not in result.stderr
