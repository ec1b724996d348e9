"""PostgreSQL URLs: read them (also in libpq's `key=value` form), validate them, point them at another
database, and show them without secrets.

Invariant: no function here echoes a password, and each is linear in the length of its text
(`redact` runs over every error message, which may quote a value of any length).
"""

from __future__ import annotations

import re
import string
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from dbmigrate.core.errors import UserError

SCHEMES = ("postgres", "postgresql")
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1


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
            "e.g. postgresql://orion:PASSWORD@localhost:5432/orion, or be libpq's key=value form "
            "(host=localhost dbname=orion ...)"
        )
    name = database_name(url)
    if not name:
        raise UserError(f"{variable} names no database: add it to the path, e.g. .../orion")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UserError(
            f"{variable} names a database of {len(name.encode())} bytes ({name[:24]}...): PostgreSQL keeps only the "
            f"first {MAX_IDENTIFIER_BYTES} bytes of a name, so it would be another database: shorten it"
        )
    if not parts.hostname and not dict(parse_qsl(parts.query)).get("host"):
        raise UserError(f"{variable} names no host: {redact_url(url)}")
    return url


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, but database `dbname`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))


# ---- libpq's key=value form (`host=db1 port=5432 dbname=orion user=orion password='a b'`) -------

_CONNINFO_START = re.compile(r"\s*[A-Za-z_]+\s*=")
_KEYWORD = re.compile(r"[A-Za-z_]+")
_SPACE = re.compile(r"\s*")


def is_conninfo(value: str) -> bool:
    """Whether `value` is written in libpq's key=value form rather than as a URL."""
    return "://" not in value and _CONNINFO_START.match(value) is not None


def as_url(value: str, variable: str) -> str:
    """`value` as a URL: a URL as it is, libpq's key=value form turned into the URL it means."""
    return conninfo_to_url(value, variable) if is_conninfo(value) else value


def conninfo_to_url(conninfo: str, variable: str) -> str:
    """The URL libpq's key=value `conninfo` means (asyncpg reads only URLs). User, password, host,
    port and dbname go where a URL has them; every other keyword becomes a query parameter, as in
    libpq's own URLs. A problem is named without the value, which may be the password."""
    pairs = _conninfo_pairs(conninfo, variable)
    user, password, dbname = pairs.pop("user", ""), pairs.pop("password", ""), pairs.pop("dbname", "")
    host, port = pairs.pop("host", ""), pairs.pop("port", "")
    if "hostaddr" in pairs and not host:
        host = pairs.pop("hostaddr")
    query: dict[str, str] = {}
    if any(c in host for c in "/,") or any(c in port for c in ","):  # a socket folder, or several hosts
        query.update(host=host, **({"port": port} if port else {}))
        host = port = ""
    elif ":" in host:  # an IPv6 address
        host = f"[{host}]"
    query.update(pairs)
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc = (credentials + "@" if credentials else "") + quote(host, safe="[]:") + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{quote(dbname, safe='')}" + (f"?{urlencode(query)}" if query else "")


def _conninfo_pairs(conninfo: str, variable: str) -> dict[str, str]:
    """libpq's grammar: `keyword = value` pairs apart by white space; a value is 'quoted' (with \\'
    and \\\\ inside) or runs to the next white space (a backslash keeps the character after it)."""

    def refuse(problem: str) -> UserError:
        return UserError(
            f"{variable} is in libpq's key=value form but {problem}: write keyword=value pairs apart by spaces "
            "(host=db1 port=5432 dbname=orion user=orion ...), a value holding spaces in single quotes, or write a "
            "URL (postgresql://USER@HOST:5432/DBNAME, the password after USER and a colon)"
        )

    pairs: dict[str, str] = {}
    position, end = _SPACE.match(conninfo).end(), len(conninfo)
    while position < end:
        keyword = _KEYWORD.match(conninfo, position)
        if keyword is None:
            raise refuse(f"has no keyword at character {position + 1}")
        position = _SPACE.match(conninfo, keyword.end()).end()
        if position >= end or conninfo[position] != "=":
            raise refuse(f"keyword {keyword.group()!r} has no '='")
        position = _SPACE.match(conninfo, position + 1).end()
        value: list[str] = []
        quoted = position < end and conninfo[position] == "'"
        position += quoted
        while position < end:
            char = conninfo[position]
            if quoted and char == "'":
                break
            if not quoted and char.isspace():
                break
            if char == "\\" and position + 1 < end:
                position += 1
                char = conninfo[position]
            value.append(char)
            position += 1
        if quoted:
            if position >= end:
                raise refuse(f"the quoted value of {keyword.group()!r} has no closing quote")
            position += 1
        pairs[keyword.group()] = "".join(value)
        position = _SPACE.match(conninfo, position).end()
    return pairs


# ---- secrets out of text --------------------------------------------------------------------------

_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")
_USER_NAME = re.compile(r"[^:/@\s]*")
_TOKEN = re.compile(r"\S*")
_PASSWORD_IN_QUERY = re.compile(r"(?P<key>[?&]password=)[^&\s]*", re.IGNORECASE)
# libpq's key=value form: password=pw, password = 'a b', password=a\ b (each alternative consumes
# what it reads for good: no backtracking, linear in the text).
_PASSWORD_IN_CONNINFO = re.compile(
    r"(?<![?&\w])(?P<key>password\s*=\s*)(?:'(?:[^'\\]|\\.?)*'?|(?:[^\s\\]|\\.?)*)", re.IGNORECASE | re.DOTALL
)


def redact(text: str) -> str:
    """`text` with the password field of every URL and key=value connection string in it replaced by
    ***, as SQLAlchemy and Alembic print them. Only that field: a password that happens to be `host`
    leaves the word host alone."""
    text = _mask_userinfo(text)
    text = _PASSWORD_IN_QUERY.sub(r"\g<key>***", text)
    return _PASSWORD_IN_CONNINFO.sub(r"\g<key>***", text)


def _mask_userinfo(text: str) -> str:
    """Every `scheme://user:PASSWORD@` with the password masked; the password runs to the last "@"
    of its white-space-delimited token (a password may itself hold "@" or ":").

    One pass: each "://" is looked at once; the scheme before it is read back only to the previous
    "://", the user name after it only to its ":"; each token's end and last "@" are found once.
    """
    out: list[str] = []
    copied = search = 0  # text[:copied] is in `out`; the next "://" is looked for from `search`
    token_end = last_at = -1  # of the token the current user name is in
    while (separator := text.find("://", search)) >= 0:
        search = separator + 1
        scheme_start = separator
        while scheme_start > copied and text[scheme_start - 1] in _SCHEME_CHARS:
            scheme_start -= 1
        if not any(c in string.ascii_letters for c in text[scheme_start:separator]):
            continue
        colon = _USER_NAME.match(text, separator + 3).end()
        if colon >= len(text) or text[colon] != ":":
            continue
        if colon >= token_end:
            token_end = _TOKEN.match(text, colon).end()
            last_at = text.rfind("@", colon, token_end)
        if last_at <= colon:
            continue
        out += [text[copied : colon + 1], "***"]
        copied = last_at
        search = last_at + 1
    out.append(text[copied:])
    return "".join(out)


def redact_url(url: str) -> str:
    """One URL (or key=value connection string), as given, with its password field masked, however
    malformed it is.

    The password is whatever lies between the user name's ":" and the last "@" (a password may
    itself hold "@", ":" or "/"), counted from after "//" when there is one: so even
    `postgres//orion:pw@@host` (no scheme colon, doubled @) shows as `postgres//orion:***@host`.
    """
    url = _PASSWORD_IN_CONNINFO.sub(r"\g<key>***", _PASSWORD_IN_QUERY.sub(r"\g<key>***", url))
    at = url.rfind("@")
    if at < 0:
        return url
    slashes = url.find("//")
    start = slashes + 2 if 0 <= slashes < at else 0
    userinfo = url[start:at]
    if ":" not in userinfo:
        return url
    return f"{url[:start]}{userinfo.split(':', 1)[0]}:***{url[at:]}"
