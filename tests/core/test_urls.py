"""Unit tests (no server): libpq's key=value form read into the URL it means, every password form
masked in text, and masking linear in the length of the text, however hostile."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dbmigrate.core.errors import UserError
from dbmigrate.core.urls import as_url, conninfo_to_url, is_conninfo, redact, redact_url, with_database


@pytest.mark.parametrize(
    ("conninfo", "url"),
    [
        (
            "host=db1 port=5433 dbname=orion user=orion password=pw",
            "postgresql://orion:pw@db1:5433/orion",
        ),
        (
            "host = db1  dbname = orion   user=orion password = 'a b\\'c\\\\d'",
            "postgresql://orion:a%20b%27c%5Cd@db1/orion",
        ),
        (
            "dbname=orion user=orion password=s3cret-pw/with:odd@chars host=127.0.0.1 sslmode=disable",
            "postgresql://orion:s3cret-pw%2Fwith%3Aodd%40chars@127.0.0.1/orion?sslmode=disable",
        ),
        ("host=/var/run/postgresql dbname=orion", "postgresql:///orion?host=%2Fvar%2Frun%2Fpostgresql"),
        ("host=::1 port=5432 dbname=orion", "postgresql://[::1]:5432/orion"),
        ("hostaddr=10.0.0.5 dbname=orion password=a\\ b", "postgresql://:a%20b@10.0.0.5/orion"),
        ("host=a,b port=1,2 dbname=orion", "postgresql:///orion?host=a%2Cb&port=1%2C2"),
    ],
)
def test_libpq_key_value_form_becomes_the_url_it_means(conninfo: str, url: str):
    assert is_conninfo(conninfo)
    assert conninfo_to_url(conninfo, "DATABASE_URL") == url
    assert as_url(conninfo, "DATABASE_URL") == url


def test_a_url_is_not_taken_for_the_key_value_form():
    url = "postgresql://orion:pw@db1/orion?sslmode=require"
    assert not is_conninfo(url)
    assert as_url(url, "DATABASE_URL") == url


@pytest.mark.parametrize(
    ("conninfo", "problem"),
    [
        ("host=db1 password='unterminated", "the quoted value of 'password' has no closing quote"),
        ("host=db1 password", "keyword 'password' has no '='"),
        ("host=db1 'pw'", "has no keyword at character 10"),
    ],
)
def test_a_key_value_string_that_does_not_parse_names_the_problem_and_never_the_value(conninfo: str, problem: str):
    with pytest.raises(UserError) as raised:
        conninfo_to_url(conninfo, "DATABASE_URL")
    message = str(raised.value)
    assert message.startswith(f"DATABASE_URL is in libpq's key=value form but {problem}: ")
    assert "unterminated" not in message and "'pw'" not in message


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("login failed: host=db password=hunter2 dbname=x", "login failed: host=db password=*** dbname=x"),
        ("host=db password = 'hunter 2' dbname=x", "host=db password = *** dbname=x"),
        ("host=db password='it\\'s' dbname=x", "host=db password=*** dbname=x"),
        ("host=db password=hun\\ ter2 dbname=x", "host=db password=*** dbname=x"),
        (
            "postgresql://u@h/d?sslmode=disable&password=hunter2&x=1",
            "postgresql://u@h/d?sslmode=disable&password=***&x=1",
        ),
        ("a postgresql://u:p@ss@h/d b postgres://v:q@h2/e", "a postgresql://u:***@h/d b postgres://v:***@h2/e"),
        ("check the user and password in DATABASE_URL", "check the user and password in DATABASE_URL"),
    ],
)
def test_redact_masks_every_form_of_password_and_nothing_else(text: str, masked: str):
    assert redact(text) == masked


def test_redact_url_masks_a_key_value_string():
    assert redact_url("host=db1 password='a b' dbname=x") == "host=db1 password=*** dbname=x"


def test_with_database_quotes_the_name():
    assert with_database("postgresql://u@h/x", "a b/c") == "postgresql://u@h/a%20b%2Fc"


# Each of these made the masking regex backtrack: time grew with the square of the length (a 100 kB
# value took 81 s). Linear masking handles 10 MB of each in well under a second; the bound below
# is a hang detector two orders of magnitude above that, not a speed claim (those live in bench/).
HOSTILE = {
    "letters": "'a' * N",
    "schemes without user info": "'a://' * (N // 4)",
    "user names without @": "'a://b:' * (N // 6)",
    "one token, passwords without @": "'postgresql://u:' * (N // 16)",
    "key=value quotes never closed": '"password=\'x " * (N // 13)',
    "backslashes": "'password=\\\\' * (N // 10)",
    "query passwords": "'?password=' * (N // 10)",
}


@pytest.mark.parametrize("shape", HOSTILE)
def test_masking_ten_megabytes_of_hostile_text_finishes(shape: str):
    program = (
        "from dbmigrate.core.urls import redact, redact_url\n"
        "N = 10_000_000\n"
        f"text = {HOSTILE[shape]} + ' postgresql://u:hunter2@h/d'\n"
        "masked = redact(text)\n"
        "assert masked.endswith(' postgresql://u:***@h/d') or 'hunter2' not in masked, masked[-80:]\n"
        "redact_url(text)\n"
        "print(len(text))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout) > 9_000_000
