"""What commands print. Piccolo's managers print their own progress; we replace it with one line
per migration, so Piccolo's prints are swallowed while a migration runs (even when several
databases migrate concurrently in one process), or captured for a dry run."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_real_stdout = sys.stdout
_buffer = io.StringIO()


def say(line: str) -> None:
    print(line, file=_real_stdout if _depth else sys.stdout, flush=True)


@contextmanager
def captured_stdout() -> Iterator[io.StringIO]:
    """Everything printed to sys.stdout in the block (by Piccolo) goes to the yielded buffer."""
    global _depth, _real_stdout, _buffer
    if _depth == 0:
        _real_stdout, _buffer = sys.stdout, io.StringIO()
        sys.stdout = _buffer
    _depth += 1
    try:
        yield _buffer
    finally:
        _depth -= 1
        if _depth == 0:
            sys.stdout = _real_stdout
