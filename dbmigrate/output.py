"""What commands print. Piccolo's managers print their own progress; we replace it with one line
per migration, so Piccolo's prints are silenced while a migration runs (even when several
databases migrate concurrently in one process)."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_silenced_depth = 0
_real_stdout = sys.stdout


def say(line: str) -> None:
    stream = _real_stdout if _silenced_depth else sys.stdout
    print(line, file=stream, flush=True)


@contextmanager
def piccolo_silenced() -> Iterator[None]:
    global _silenced_depth, _real_stdout
    if _silenced_depth == 0:
        _real_stdout = sys.stdout
        sys.stdout = io.StringIO()
    _silenced_depth += 1
    try:
        yield
    finally:
        _silenced_depth -= 1
        if _silenced_depth == 0:
            sys.stdout = _real_stdout
