"""Hostile and mistyped input: no Make variable ever reaches a shell, passwords are masked by
field and never echoed from a malformed URL, client-side connection settings and out-of-range
durations get one clear line, and typos get a useful answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_make import make, make_error
from support import ROOT, Databases, migration_ids
from test_bad_inputs import one_line_error

from dbmigrate.core.config import DATABASES, postgres_duration, select_databases
from dbmigrate.core.errors import UserError
from dbmigrate.core.urls import redact, redact_url, validate
from dbmigrate.server.connection import _where

# ---- 4. Make variables never reach a shell ------------------------------------------------------


@pytest.fixture
def traps(tmp_path: Path) -> Path:
    """An empty folder that hostile values try to create files in: it must stay empty."""
    folder = tmp_path / "traps"
    folder.mkdir()
    return folder


def payloads(folder: Path) -> str:
    """One value holding every way a shell (or make) could be made to run a command."""
    return (
        f"x;touch {folder}/semicolon $(touch {folder}/dollar) `touch {folder}/backtick` "
        f"$(shell touch {folder}/make_shell) '\"; touch {folder}/quote; \"' && touch {folder}/and"
    )


# Each variable with a target that takes it; DB=nosuchdb (where DB is not the variable under test)
# makes the run stop before touching any database, after the value reached the CLI.
VARIABLES = [
    ("DB", "db-migrate", {}),
    ("NAME", "db-migrate-create", {}),
    ("TO", "db-migrate", {"DB": "nosuchdb"}),
    ("TO", "db-migrate-down", {"DB": "nosuchdb"}),
    ("STEPS", "db-migrate-down", {}),
    ("CONFIRM", "db-migrate-down", {"DB": "nosuchdb"}),
    ("FORMAT", "db-migrate-status", {"DB": "nosuchdb"}),
    ("BASE", "db-verify", {"DB": "nosuchdb"}),
    ("AUTO", "db-migrate-create", {"NAME": "add_x"}),
    ("CHECK", "db-migrate-status", {}),
    ("DRY_RUN", "db-migrate", {}),
    ("OUT_OF_ORDER", "db-migrate", {}),
    ("DB", "db-reset", {}),
    ("CONFIRM", "db-drop", {"DB": "nosuchdb"}),
    ("PYTHON", "venv", {}),
    ("SUMMARY", "db-verify", {"DB": "nosuchdb"}),
    ("ROWS", "db-rehearse", {"DB": "nosuchdb"}),
    ("MAX_BLOCK", "db-rehearse", {"DB": "nosuchdb"}),
    ("FROM_DB", "db-rehearse", {"DB": "nosuchdb"}),
]


@pytest.mark.parametrize(("variable", "target", "others"), VARIABLES, ids=[f"{v}-{t}" for v, t, _ in VARIABLES])
def test_no_make_variable_reaches_a_shell(traps: Path, dbs: Databases, variable: str, target: str, others: dict):
    value = payloads(traps)
    settings = [f"{k}={v}" for k, v in others.items()]
    for result in (
        make(dbs, target, f"{variable}={value}", *settings),  # typed on make's command line
        make(dbs, target, *settings, env={variable: value}),  # or set in the environment
    ):
        assert result.returncode != 0, result.stdout
        assert list(traps.iterdir()) == [], f"{variable} ran a command: {result.stderr}"
        assert "Traceback" not in result.stderr
    for name in DATABASES:
        assert dbs.applied(name) == []


def test_make_variables_arrive_as_typed(tmp_path: Path, dbs: Databases):
    line = make_error(make(dbs, "db-migrate-create", "NAME=$(touch pwned)"), "migration name '$(touch pwned)'")
    assert "is not usable" in line
    make_error(make(dbs, "db-migrate", "DB=orion; touch pwned"), "unknown database 'orion; touch pwned'")
    make_error(make(dbs, "db-migrate-down", "STEPS=1;touch pwned"), "STEPS='1;touch pwned' is not a number")
    make_error(make(dbs, "db-migrate-status", "FORMAT=$(shell touch pwned)"), "'$(shell touch pwned)'")
    assert not (ROOT / "pwned").exists()


@pytest.mark.parametrize(
    "target",
    ["db-migrate-$(touch {0}/t)", "db-migrate-;touch {0}/t", "db-migrate-`touch {0}/t`", "x$(shell touch {0}/t)"],
)
def test_no_target_name_reaches_a_shell(traps: Path, dbs: Databases, target: str):
    result = make(dbs, target.format(traps))
    assert result.returncode != 0
    assert "unknown target" in result.stderr
    assert list(traps.iterdir()) == []


def test_switches_accept_only_yes_or_no(dbs: Databases):
    make_error(make(dbs, "db-migrate", "DRY_RUN=y"), "DRY_RUN='y' is not understood", "DRY_RUN=1")
    assert dbs.applied("orion") == []  # not a real run either
    out = make(dbs, "db-migrate", "DRY_RUN=yes")
    assert out.returncode == 0 and "CREATE TABLE" in out.stdout
    assert dbs.applied("orion") == []


# ---- 5. db-migrate-all and TO -------------------------------------------------------------------


def test_migrate_all_refuses_to(dbs: Databases):
    make_error(make(dbs, "db-migrate-all", "TO=001"), "takes no TO", "make db-migrate DB=orion TO=003")
    for name in DATABASES:
        assert dbs.applied(name) == []


def test_per_database_targets_honour_to_and_refuse_db(dbs: Databases):
    assert make(dbs, "db-migrate-orion", "TO=001").returncode == 0
    assert dbs.applied("orion") == migration_ids("orion")[:1]
    make_error(make(dbs, "db-migrate-rfq", "DB=orion"), "make db-migrate-rfq acts on rfq, so it takes no DB")
    assert dbs.applied("rfq") == []


def test_a_variable_the_target_does_not_take_is_refused_only_when_typed(dbs: Databases):
    make_error(make(dbs, "db-seed", "STEPS=2"), "make db-seed does not take STEPS (it takes DB)")
    # The same name in the environment may be there for something else: it is left alone.
    assert make(dbs, "db-migrate-status", "DB=rfq", env={"STEPS": "2"}).returncode == 0


# ---- 10. Typos: NAME, targets, database names --------------------------------------------------


def test_create_without_name_says_how(dbs: Databases):
    line = make_error(make(dbs, "db-migrate-create"))
    assert line == "error: NAME is required: make db-migrate-create NAME=add_x"


def test_unknown_target_is_not_an_unknown_database(dbs: Databases):
    result = make(dbs, "db-migrate-stauts")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown target 'db-migrate-stauts'" in lines[0]
    assert "unknown database" not in result.stderr
    for target in ("db-migrate-status", "db-migrate-orion", "db-reset", "help"):
        assert f" {target} " in lines[0]


def test_database_names_ignore_case_accept_lists_and_suggest():
    assert select_databases("ORION") == [DATABASES["orion"]]
    assert select_databases("orion, RFQ,orion") == [DATABASES["orion"], DATABASES["rfq"]]
    assert select_databases("All") == list(DATABASES.values())
    with pytest.raises(UserError, match="did you mean marketdata"):
        select_databases("marketdta")
    with pytest.raises(UserError, match="unknown database 'trades'"):
        select_databases("orion,trades")


def test_a_list_of_databases_from_make(dbs: Databases):
    out = make(dbs, "db-migrate", "DB=Orion,rfq")
    assert out.returncode == 0, out.stderr
    assert dbs.applied("orion") == migration_ids("orion") and dbs.applied("rfq") == migration_ids("rfq")
    assert dbs.applied("marketdata") == []
    status = make(dbs, "db-migrate-status", "DB=orion,marketdata").stdout
    assert "orion (" in status and "marketdata (" in status and "rfq (" not in status
    make_error(make(dbs, "db-migrate-down", "DB=orion,rfq"), "down acts on one database")


# ---- 11. Help says what the commands do --------------------------------------------------------


def test_help_of_one_database_commands_does_not_offer_all(dbs: Databases):
    for command in ("down", "create", "baseline"):
        out = dbs.cli(command, "--help").stdout
        assert "or all" not in out and "orion, rfq, marketdata" in out
    assert "or all" in dbs.cli("migrate", "--help").stdout


def test_make_help_shows_confirm_and_every_database_target(dbs: Databases):
    out = make(dbs, "help").stdout
    assert "%" not in out
    assert "CONFIRM" in out and "[CONFIRM=db]" in out
    for name in DATABASES:
        assert f"make db-migrate-{name} " in out


# ---- 3. Passwords: the field, never the text ---------------------------------------------------


def test_redaction_masks_the_password_field_only():
    message = "cannot reach PostgreSQL at localhost:5999/orion: check the host and port (postgresql://orion:host@h/x)"
    assert redact(message) == message.replace("orion:host@", "orion:***@")
    assert redact_url("postgresql://orion:orion@localhost:5999/orion") == "postgresql://orion:***@localhost:5999/orion"
    assert redact_url("postgresql://u:p@ss:w/rd@db.example:5432/orion") == "postgresql://u:***@db.example:5432/orion"
    assert redact_url("postgresql://u@/orion?host=/tmp&password=pw") == "postgresql://u@/orion?host=/tmp&password=***"
    assert redact_url("postgresql://orion@localhost/orion") == "postgresql://orion@localhost/orion"


@pytest.mark.parametrize(
    "url",
    [
        "postgres//orion:pw@@nohost:xx/orion",
        "postgres:/orion:pw@nohost/orion",
        "orion:pw@nohost/orion",
        "postgresql://orion:pw@nohost:xx/orion",
        "mysql://orion:pw@nohost/orion",
        "postgresql://orion:pw/x@nohost/orion",
    ],
)
def test_a_malformed_url_never_shows_its_password(url: str):
    assert "pw" not in redact_url(url)
    with pytest.raises(UserError) as raised:
        validate(url, "DATABASE_URL")
    assert "pw" not in str(raised.value) and "DATABASE_URL" in str(raised.value)


def test_a_malformed_database_url_is_refused_without_its_password(dbs: Databases):
    dbs.extra_env["DATABASE_URL"] = "postgres//orion:pw@@nohost:xx/orion"
    line = one_line_error(dbs.cli("status", "orion", expect=1), "DATABASE_URL")
    assert "pw" not in line and "postgres//orion:***@" in line


def test_a_password_that_is_a_common_word_leaves_the_message_readable(dbs: Databases):
    dbs.extra_env["DATABASE_URL"] = "postgresql://orion:host@127.0.0.1:1/orion"
    line = one_line_error(dbs.cli("migrate", "orion", expect=1), "cannot reach PostgreSQL at 127.0.0.1:1/orion")
    assert "check its host and port" in line and "***" not in line
    dbs.extra_env["DATABASE_URL"] = "postgresql://orion:orion@127.0.0.1:1/orion"
    one_line_error(dbs.cli("migrate", "orion", expect=1), "127.0.0.1:1/orion", "DATABASE_URL")


# ---- 2. Client-side connection settings --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("sslmode=bogus", "sslmode"), ("target_session_attrs=bogus", "target_session_attrs"), ("port=abc", "abc")],
)
def test_a_client_setting_asyncpg_refuses_is_one_line(dbs: Databases, query: str, fragment: str):
    dbs.extra_env["DATABASE_URL"] = f"{dbs.url('orion')}&{query}"
    line = one_line_error(dbs.cli("migrate", "orion", expect=1), f"{dbs.prefix}_orion", fragment, "fix it in the URL")
    assert "unexpected" not in line
    assert dbs.applied("orion") == []


def test_an_unreadable_ssl_file_is_named(dbs: Databases, tmp_path: Path):
    missing = tmp_path / "root.crt"
    dbs.extra_env["DATABASE_URL"] = f"{dbs.url('orion')}&sslmode=verify-full&sslrootcert={missing}"
    line = one_line_error(dbs.cli("migrate", "orion", expect=1), str(missing), "fix the path")
    assert "unexpected" not in line


# ---- 7. Durations, socket ports, lock holders --------------------------------------------------


def test_durations_postgresql_would_refuse_are_refused():
    assert postgres_duration("24d", "X") == "24d"
    assert postgres_duration("2147483647", "X") == "2147483647"
    for value in ("25d", "2147483648", "99999999999999999999s", "600h"):
        with pytest.raises(UserError, match="longer than PostgreSQL allows"):
            postgres_duration(value, "ORION_LOCK_TIMEOUT")


def test_the_limit_is_postgresqls_own(dbs: Databases):
    dbs.sql("orion", "SET lock_timeout = '24d'")
    dbs.sql("orion", "SET lock_timeout = '2147483647'")
    with pytest.raises(Exception, match="exceeds integer range|outside the valid range"):
        dbs.sql("orion", "SET lock_timeout = '25d'")


def test_a_huge_lock_timeout_is_one_line(dbs: Databases):
    dbs.extra_env["ORION_LOCK_TIMEOUT"] = "99999999999999999999s"
    one_line_error(dbs.cli("migrate", "orion", expect=1), "ORION_LOCK_TIMEOUT", "longer than PostgreSQL allows")
    assert dbs.applied("orion") == []


def test_socket_urls_are_described_with_their_port():
    assert _where("postgresql://u@/orion?host=/run/pg&port=5999") == "/run/pg:5999/orion"
    assert _where("postgresql://u@localhost/orion") == "localhost:5432/orion"
    assert _where("postgresql://u@localhost:6000/orion?port=7000") == "localhost:6000/orion"


def test_a_stopped_socket_server_is_described_with_its_port(dbs: Databases, tmp_path: Path):
    dbs.extra_env["DATABASE_URL"] = f"postgresql://orion@/orion?host={tmp_path}&port=5999"
    one_line_error(dbs.cli("migrate", "orion", expect=1), f"{tmp_path}:5999/orion")


def test_the_lock_holder_of_another_role_is_described_without_none(dbs: Databases):
    """A role without pg_read_all_stats sees NULL for another role's application and start time."""
    import asyncio

    import asyncpg

    from dbmigrate.engine.lock import LOCK_KEY, acquire

    role = f"{dbs.prefix}_waiter"
    dbs.sql("orion", f'CREATE ROLE "{role}" LOGIN')
    try:

        async def go() -> str:
            holder = await asyncpg.connect(dbs.url("orion"))
            waiter_url = dbs.url("orion").replace("postgresql://postgres@", f"postgresql://{role}@")
            waiter = await asyncpg.connect(waiter_url)
            try:
                await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
                with pytest.raises(UserError) as raised:
                    await acquire(waiter, "orion", 0.2)
                return str(raised.value)
            finally:
                await waiter.close()
                await holder.close()

        message = asyncio.run(go())
    finally:
        dbs.sql("orion", f'DROP ROLE "{role}"')
    assert "another migration holds the lock" in message
    assert "None" not in message and "user postgres" in message and "pg_read_all_stats" in message


def test_any_other_variable_on_makes_command_line_reaches_the_cli_as_typed(traps: Path, dbs: Databases):
    """ORION_ENV=staging on make's command line still works; $(shell ...) in it is only text."""
    payload = f"$(shell touch {traps}/orion_env)"
    make_error(make(dbs, "db-migrate-status", f"ORION_ENV={payload}"), f"unknown ORION_ENV '{payload}'")
    make_error(make(dbs, "db-migrate-status", "ORION_ENV=bogus"), "unknown ORION_ENV 'bogus'")
    make(dbs, "help", f"SOMETHING_ELSE={payload}")
    assert list(traps.iterdir()) == []


def test_makes_own_default_variables_are_not_passed_as_the_users(dbs: Databases):
    """GNU make defines LINT = lint itself: db-verify must not read that as LINT=lint."""
    make_error(make(dbs, "db-verify", "DB=nosuchdb"), "unknown database 'nosuchdb'")
