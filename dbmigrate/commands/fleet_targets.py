"""A fleet's targets: the TARGETS file read into one Target per line, shards of it, and the proof
that no two lines name one database.

The file has one target per line, `<kind> <url>` (the URL may also be libpq's key=value form,
which holds spaces: `orion host=db1 dbname=orion user=orion`); blank lines and `#` comments are
ignored; a UTF-8 byte order mark at the start is ignored; a line that is not a target is refused,
naming its line number.

Invariant: no database is migrated twice, nor with the migrations of two kinds. Lines are compared
twice: by what their URLs say once normalised (scheme, host spelling, default port and query
parameters do not count) before anything connects, and by what each server says it is once
connected (`database_identity`: the cluster's system identifier and the database's oid), before
anything is migrated; two lines naming one database are refused, both named.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from dbmigrate.core.config import DATABASES, Settings
from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.core.urls import conninfo_to_url, database_name, is_conninfo, redact_url, validate
from dbmigrate.engine.target import Target

_COMMENT = re.compile(r"(^|\s)#.*$")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
DEFAULT_PORT = 5432
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
# What a server says it is: the cluster's system identifier (or, where a role may not read it,
# its start time) and the database's oid.
_IDENTITY = """
SELECT (SELECT system_identifier::text FROM pg_control_system()) AS cluster,
       (SELECT oid FROM pg_database WHERE datname = current_database())::bigint AS database
"""
_IDENTITY_WITHOUT_CONTROL = """
SELECT pg_postmaster_start_time()::text AS cluster,
       (SELECT oid FROM pg_database WHERE datname = current_database())::bigint AS database
"""


@dataclass
class FleetTarget:
    line: int
    target: Target
    path: Path | None = None  # the TARGETS file, for messages

    @property
    def shown(self) -> str:
        return self.target.shown_url

    @property
    def kind(self) -> str:
        return self.target.name

    @property
    def where(self) -> str:
        return f"{self.path} line {self.line}" if self.path else f"line {self.line}"


def read_targets(settings: Settings, path: Path) -> list[FleetTarget]:
    """The targets of the file at `path`, in order; a UsageError naming the line for a bad one."""
    try:
        kind = path.stat().st_mode
        if not (stat.S_ISREG(kind) or stat.S_ISFIFO(kind)):  # /dev/zero would be read for ever
            raise UsageError(
                f"TARGETS={path} is {'a folder' if stat.S_ISDIR(kind) else 'not a regular file'}: "
                "give a text file, one `<kind> <url>` per line"
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"TARGETS file {path} does not exist: write one target per line, `<kind> <url>`") from None
    except (OSError, UnicodeDecodeError) as error:
        what = "not valid UTF-8" if isinstance(error, UnicodeDecodeError) else error.strerror or type(error).__name__
        raise UsageError(
            f"TARGETS file {path} cannot be read ({what}): give a UTF-8 text file, one `<kind> <url>` per line"
        ) from None
    kinds = ", ".join(DATABASES)
    by_kind: dict[str, Target] = {}  # files read and hashed once per kind
    seen: dict[tuple, FleetTarget] = {}
    targets: list[FleetTarget] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        where = f"{path} line {number}"
        fields = line.split(None, 1)
        url = fields[1].strip() if len(fields) == 2 else ""
        if not url or (len(url.split()) > 1 and not is_conninfo(url)):
            raise UsageError(
                f"{where} is not a target: write `<kind> <url>` (kind one of {kinds}), e.g. "
                "orion postgresql://orion@db1:5432/orion"
            )
        kind = fields[0].lower()
        if kind not in DATABASES:
            raise UsageError(f"{where}: unknown kind {redact_url(fields[0])!r}: write one of {kinds}, then the URL")
        try:  # a bad line of the file is a bad input: exit 2, as for a command line
            url = validate(conninfo_to_url(url, where) if is_conninfo(url) else url, where)
        except UserError as error:
            raise UsageError(str(error)) from None
        if kind not in by_kind:
            by_kind[kind] = Target.for_url(settings, DATABASES[kind], url)
        target = FleetTarget(number, by_kind[kind].with_url(url), path)
        key = same_database_key(url)
        if key in seen:
            raise UsageError(one_database_twice(seen[key], target, "their URLs name one server and database"))
        seen[key] = target
        targets.append(target)
    if not targets:
        raise UsageError(f"TARGETS file {path} lists no targets: write one per line, `<kind> <url>`")
    return targets


def same_database_key(url: str) -> tuple:
    """What a URL names, however it is spelled: (host, port, database). The scheme (postgres:// or
    postgresql://), the user, query parameters such as sslmode, the case of the host name, the
    default port and the spellings of the loopback address (localhost, 127.0.0.1, ::1) do not count."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = (parts.hostname or query.get("host") or "").strip().lower()
    try:
        port = int(parts.port or query.get("port") or DEFAULT_PORT)
    except ValueError:
        port = DEFAULT_PORT
    return (_host_key(host), port, database_name(url))


def _host_key(host: str) -> str:
    if not host or host.startswith("/"):  # a Unix socket folder ("" is libpq's default one)
        return "socket:" + (os.path.realpath(host) if host else "")
    if host in _LOOPBACK_NAMES:
        return "loopback"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.rstrip(".")
    return "loopback" if address.is_loopback else str(address)


async def database_identity(conn: asyncpg.Connection) -> tuple[str, int]:
    """What the server says the connected database is: (its cluster, its oid). Two connections get
    the same identity exactly when they reach one database, whatever host name, address, port or
    pooler they went through."""
    try:
        row = await conn.fetchrow(_IDENTITY)
    except asyncpg.InsufficientPrivilegeError:  # pg_control_system() revoked: the start time will do
        row = await conn.fetchrow(_IDENTITY_WITHOUT_CONTROL)
    return (row["cluster"], row["database"])


def refuse_one_database_twice(identified: list[tuple[FleetTarget, tuple]]) -> None:
    """A UsageError naming the first two lines whose servers said they are one database."""
    seen: dict[tuple, FleetTarget] = {}
    for target, identity in identified:
        if identity in seen:
            raise UsageError(
                one_database_twice(seen[identity], target, "their servers say they are one database")
                + "; nothing was migrated"
            )
        seen[identity] = target


def one_database_twice(first: FleetTarget, second: FleetTarget, why: str) -> str:
    if first.kind != second.kind:
        return (
            f"{second.where} ({second.kind}, {second.shown}) and line {first.line} ({first.kind}, {first.shown}) "
            f"name one database ({why}): a database has the migrations of one kind, so list it once, with its kind"
        )
    return (
        f"{second.where} names the same database as line {first.line} ({why}: {first.shown} and {second.shown}): "
        "list each database once"
    )


def shard(targets: list[FleetTarget], spec: str | None) -> list[FleetTarget]:
    """SHARD=i/n: every n-th target from the i-th (1-based), by position in the file."""
    if spec is None or not spec.strip():
        return targets
    match = _SHARD.match(spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"SHARD={spec!r} is not i/n with 1 <= i <= n: write e.g. SHARD=2/4 for the second of four")
    index, count = int(match[1]), int(match[2])
    return targets[index - 1 :: count]
