"""The reporter: where commands' progress lines go.

Code that reports calls `say(line)`; the current task's reporter decides where the line goes
(stdout by default). A caller that wants a quiet run (verify's scratch migrations, template
builds) or the lines themselves sets another reporter for its own task with `reporting_to`;
concurrent tasks (three databases migrating at once) never affect each other, and sys.stdout is
never swapped. Errors go to stderr, one line each, through `complain(message)`. Piccolo's own
prints are handled apart (piccolo_engine.piccolo_prints).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from dbmigrate.core.text import message_line
from dbmigrate.core.urls import redact

Reporter = Callable[[str], None]


def to_stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def nowhere(line: str) -> None:
    pass


_reporter: ContextVar[Reporter] = ContextVar("dbmigrate_reporter", default=to_stdout)


def say(line: str) -> None:
    _reporter.get()(line)


def complain(message: str) -> None:
    """One error line on stderr (`error: ...`): passwords masked, on one line whatever it quotes."""
    print(f"error: {message_line(redact(message))}", file=sys.stderr, flush=True)


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    """Send the current task's lines (and those of tasks it starts) to `reporter` in the block."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


def interactive() -> bool:
    """Whether lines go to stdout and a person watches stderr (a terminal): then progress bars may be drawn."""
    return _reporter.get() is to_stdout and sys.stderr.isatty()


def quiet() -> contextmanager:
    return reporting_to(nowhere)
