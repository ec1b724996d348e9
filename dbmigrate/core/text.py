"""The project's text files read as UTF-8, and values shown on one line.

Invariant: a file that is not UTF-8 text, or not a readable file at all, is a UserError naming the
file, where in it, and what to do, never a UnicodeDecodeError or OSError reaching the user; a value
echoed in a message never breaks it across lines. Both linear in the size of what they read.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from dbmigrate.core.errors import UserError

_CHUNK_BYTES = 1 << 20
_SHOWN_MAX = 120
_LONG_WORD = re.compile(r"\S{301,}")  # a path may be long; a value of 5,000 digits is pasted in whole


def read_utf8(path: Path, shown: str | None = None) -> str:
    """The text of `path` (a UTF-8 byte order mark at its start dropped)."""
    return decode_utf8(read_bytes(path, shown), shown or str(path))


def decode_utf8(data: bytes, shown: str) -> str:
    """`data`, the content of the file `shown`, as text (a UTF-8 byte order mark at its start dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise not_utf8(shown, data, error.start) from None


def read_bytes(path: Path, shown: str | None = None) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise unreadable(shown or str(path), error) from None


def check_utf8(path: Path, shown: str | None = None) -> None:
    """Raise unless all of `path` is UTF-8, read in pieces (for files too big to hold at once)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, consumed = 0, 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    raise not_utf8(shown or str(path), chunk, error.start, lines) from None
                lines += chunk.count(b"\n")
                consumed += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:  # the file ends inside a character
        raise UserError(
            f"{shown or path} is not UTF-8 text (it ends inside a character, after byte {consumed}): save it as UTF-8"
        ) from None
    except OSError as error:
        raise unreadable(shown or str(path), error) from None


def not_utf8(shown: str, data: bytes, start: int, lines_before: int = 0) -> UserError:
    """`start`: where in `data` the first byte that is not UTF-8 is (an incremental decoder counts
    from a character it held back from the piece before, so the line is then off by at most one)."""
    start = max(min(start, len(data) - 1), 0)
    line = lines_before + data.count(b"\n", 0, start) + 1
    return UserError(
        f"{shown} is not UTF-8 text (byte 0x{data[start]:02x} on line {line}): save it as UTF-8, "
        f"e.g. `iconv -f latin1 -t utf-8`"
    )


def unreadable(shown: str, error: OSError) -> UserError:
    reason = error.strerror or type(error).__name__
    if isinstance(error, IsADirectoryError):
        reason = "it is a folder"
    return UserError(f"{shown} cannot be read ({reason}): it must be a readable text file")


def strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def one_line(value: str, limit: int | None = _SHOWN_MAX) -> str:
    """`value` as it is safe to echo inside a one-line message: line breaks and other control
    characters escaped (a newline shows as \\n), and a long value cut short, saying how long
    (unless `limit` is None)."""
    escaped = "".join(_escape(c) if (c < " " and c != "\t") or c == "\x7f" else c for c in value)
    if limit is not None and len(escaped) > limit:
        return f"{escaped[: limit - 20]}... ({len(value)} characters)"
    return escaped


def _escape(char: str) -> str:
    return {"\n": "\\n", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")


def message_line(message: str) -> str:
    """A whole message on one line: control characters escaped, and any run of more than 300
    characters without a space (a value pasted in whole: 5,000 digits) shortened, saying how long."""
    return _LONG_WORD.sub(lambda word: one_line(word.group()), one_line(message.strip(), limit=None))
