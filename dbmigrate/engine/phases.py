"""Deploy phases: whether a migration runs before the deploy of the code that needs it, or after.

A migration file declares `PHASE = "post"` at module level when it must wait until no old code is
left (the contract step of an expand/contract change: dropping a column the old version reads,
finishing a rename); without it, it is a pre-deploy migration. The line is read as text, like the
ID (files.py), so planning never imports a migration.

`make db-migrate PHASE=pre` applies the pending pre-deploy migrations and leaves the post-deploy
ones pending; `make db-migrate` (or PHASE=post) applies everything, in order. The ordering rule:
a pre-deploy migration may run before a post-deploy one numbered earlier (that is the point), so
a pre-deploy migration may not depend on a post-deploy one of the same deploy. verify checks it
(commands/verify_phases.py): the pending migrations, applied pre-deploy first and post-deploy
after, must build the schema that applying them in order builds.

Invariant: a post-deploy migration waiting behind later pre-deploy ones is not out of order, and
nothing else is excused from the out-of-order check. This module only reads and checks phases;
the plans that honour them are state.py's (select, left_for_later, waits_for_deploy).
"""

from __future__ import annotations

import re

PRE = "pre"
POST = "post"
PHASES = (PRE, POST)
_PHASE_LINE = re.compile(r"""^PHASE\s*(?::\s*str\s*)?=\s*(?P<value>.*?)\s*(#.*)?$""", re.MULTILINE)
_QUOTED = re.compile(r"""^(['"])(?P<phase>[^'"\n]*)\1$""")


def declared_phase(text: str) -> str:
    """The phase a migration file's text declares (PRE when it has no PHASE line); ValueError
    naming the value for anything but "pre" or "post"."""
    match = _PHASE_LINE.search(text) if "PHASE" in text else None  # the substring test is the fast path
    if match is None:
        return PRE
    quoted = _QUOTED.match(match["value"])
    if quoted is None or quoted["phase"] not in PHASES:
        raise ValueError(f'PHASE = {match["value"]} is not a deploy phase: write PHASE = "post" (or leave it out)')
    return quoted["phase"]


def check(phase: str | None) -> str | None:
    """`phase` from the command line (None: everything), or ValueError saying what to write."""
    if phase is None or not phase.strip():
        return None
    chosen = phase.strip().lower()
    if chosen not in PHASES:
        raise ValueError(
            f"PHASE={phase!r} is not a deploy phase: PHASE=pre applies the pre-deploy migrations only, PHASE=post "
            "(or no PHASE) applies everything"
        )
    return chosen
