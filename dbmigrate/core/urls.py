"""PostgreSQL URLs: validate them, point them at another database, and show them without secrets."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from dbmigrate.core.errors import UserError

SCHEMES = ("postgres", "postgresql")


def validate(url: str, variable: str) -> str:
    """Return `url` if it is a usable PostgreSQL URL, else raise naming `variable`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        # The parser's own message can quote part of the password: say what to check instead.
        raise UserError(
            f"{variable} is not a valid URL (check the port, and percent-encode @ : / in the password): "
            f"{redact_url(url)}"
        ) from None
    if parts.scheme not in SCHEMES:
        raise UserError(
            f"{variable} must start with postgresql:// (got {redact_url(url)}), "
            "e.g. postgresql://orion:PASSWORD@localhost:5432/orion"
        )
    if not database_name(url):
        raise UserError(f"{variable} names no database: add it to the path, e.g. .../orion")
    if not parts.hostname and not dict(parse_qsl(parts.query)).get("host"):
        raise UserError(f"{variable} names no host: {redact_url(url)}")
    return url


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, but database `dbname`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


# Greedy up to the token's last "@": a password may itself contain "@" or ":".
_PASSWORD_IN_NETLOC = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<password>\S*)@", re.IGNORECASE)
_PASSWORD_IN_QUERY = re.compile(r"(?P<key>[?&]password=)[^&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password field of every URL in it replaced by ***, as SQLAlchemy and Alembic
    print them. Only that field: a password that happens to be `host` leaves the word host alone."""
    text = _PASSWORD_IN_NETLOC.sub(r"\g<scheme>:***@", text)
    return _PASSWORD_IN_QUERY.sub(r"\g<key>***", text)


def redact_url(url: str) -> str:
    """One URL, as given, with its password field masked, however malformed it is.

    The password is whatever lies between the user name's ":" and the last "@" (a password may
    itself hold "@", ":" or "/"), counted from after "//" when there is one: so even
    `postgres//orion:pw@@host` (no scheme colon, doubled @) shows as `postgres//orion:***@host`.
    """
    url = _PASSWORD_IN_QUERY.sub(r"\g<key>***", url)
    at = url.rfind("@")
    if at < 0:
        return url
    slashes = url.find("//")
    start = slashes + 2 if 0 <= slashes < at else 0
    userinfo = url[start:at]
    if ":" not in userinfo:
        return url
    return f"{url[:start]}{userinfo.split(':', 1)[0]}:***{url[at:]}"
