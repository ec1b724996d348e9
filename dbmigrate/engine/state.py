"""Migration state and plans: what a database has applied against what its folder holds, and
which migrations a command will run, in which order. Pure functions of that state: no I/O.

A file is *modified* when its checksum differs from the one recorded when it was applied,
*missing* when it was applied but is gone (*from another branch* when a copy of its down was
stored at apply, so `down` reverts it without the file: stored_down.py), *out of order* when it
is pending but numbered before one already applied (two branches merged; a post-deploy migration waiting behind later
pre-deploy ones is not, phases.py), *failed* when it is a non-transactional migration that
failed midway, *incomplete* when one was interrupted midway (its runner or connection died).
Every "before", "after" and "last" here is by number (files.order_key), never by text.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbmigrate.core.errors import UsageError, UserError
from dbmigrate.engine import phases
from dbmigrate.engine.files import MigrationFile, last_of, order_key
from dbmigrate.engine.recorder import AppliedMigration, FailedMigration


@dataclass(frozen=True)
class MigrationState:
    database: str
    files: list[MigrationFile]  # in the order they apply (by number: files.discover)
    applied: dict[str, AppliedMigration]
    failed: dict[str, FailedMigration]

    @property
    def pending(self) -> list[MigrationFile]:
        return [m for m in self.files if m.id not in self.applied]

    @property
    def modified(self) -> list[MigrationFile]:
        return [m for m in self.files if m.id in self.applied and self.applied[m.id].checksum not in (None, m.checksum)]

    @property
    def missing(self) -> list[str]:
        on_disk = {m.id for m in self.files}
        return [i for i, a in self.applied.items() if i not in on_disk and not a.file_removed]

    @property
    def from_another_branch(self) -> list[str]:
        """Missing, with a stored copy of its down: applied on a branch that is not checked out."""
        return [i for i in self.missing if self.applied[i].down_stored]

    def revert_steps(self) -> dict[str, int]:
        """Each migration from another branch: the STEPS of `down` that reverts it (and those after it)."""
        elsewhere = set(self.from_another_branch)
        newest_first = sorted(self.applied, key=lambda i: self.applied[i].sequence, reverse=True)
        return {i: steps for steps, i in enumerate(newest_first, start=1) if i in elsewhere}

    @property
    def removed(self) -> list[str]:
        """Applied, file gone, and accepted as gone by a repair."""
        on_disk = {m.id for m in self.files}
        return [i for i, a in self.applied.items() if i not in on_disk and a.file_removed]

    @property
    def last_applied(self) -> str | None:
        """The applied migration numbered last (not necessarily the one applied last)."""
        return last_of(self.applied)

    @property
    def out_of_order(self) -> list[MigrationFile]:
        last = self.last_applied
        if last is None:
            return []
        last_key = order_key(last)
        return [m for m in self.pending if order_key(m.id) < last_key and not waits_for_deploy(m, self)]

    @property
    def unverified(self) -> list[MigrationFile]:
        """Applied without a checksum (by Piccolo's own CLI, or before checksums were kept)."""
        return [m for m in self.files if m.id in self.applied and self.applied[m.id].checksum is None]

    def check_integrity(self) -> None:
        """Refuse to go on while an applied migration's file changed or vanished (Flyway's validate)."""
        elsewhere = self.from_another_branch
        problems = [f"{m.id} was modified after it was applied" for m in self.modified]
        problems += [f"{i} was applied but its file is missing" for i in self.missing if i not in elsewhere]
        advice = []
        if problems:
            advice.append(
                f"{'; '.join(problems)}. Restore the file(s) from version control, or, if the change is deliberate "
                f"and the database already matches it, run `make db-migrate-repair DB={self.database}`"
            )
        if elsewhere:
            advice.append(
                f"{', '.join(elsewhere)} applied from another branch (file not here): `make db-migrate-down "
                f"DB={self.database} STEPS={max(self.revert_steps().values())}` reverts them from the copy stored when "
                "they were applied, or check out their branch"
            )
        if advice:
            raise UserError(f"{self.database}: {'. '.join(advice)}")


def find(files: list[MigrationFile], target: str, database: str) -> MigrationFile:
    """The migration named by `target`: its full ID, or its number ("003", "3" and "0003" alike)."""
    exact = [m for m in files if m.id == target]
    if exact:
        return exact[0]
    if target.isdigit():
        numbered = [m for m in files if m.number == int(target)]
        if len(numbered) == 1:
            return numbered[0]
    known = ", ".join(m.id for m in files) or "none"
    raise UsageError(f"{database}: no migration {target!r}; the migrations are: {known}")


def forwards_plan(
    state: MigrationState, to: str | None = None, allow_out_of_order: bool = False, phase: str | None = None
) -> list[MigrationFile]:
    """The pending migrations to apply, up to and including `to` when given (PHASE=pre: only the
    pre-deploy ones, phases.py)."""
    plan = select(state.pending, phase)
    if to is not None:  # state.files are in the order they apply: those up to `to` are the ones before it
        last = state.files.index(find(state.files, to, state.database))
        up_to = {m.id for m in state.files[: last + 1]}
        plan = [m for m in plan if m.id in up_to]
    late_ids = {m.id for m in state.out_of_order}
    late = [m.id for m in plan if m.id in late_ids]
    if late and not allow_out_of_order:
        raise UserError(
            f"{state.database}: {', '.join(late)} numbered before the last applied migration "
            f"({state.last_applied}), as happens when branches merge. Renumber them after it, or apply them "
            "anyway with OUT_OF_ORDER=1"
        )
    return plan


def backwards_plan(state: MigrationState, steps: int | None = None, to: str | None = None) -> list[MigrationFile | str]:
    """The applied migrations to revert, most recently applied first: the last one, the last
    `steps`, or all numbered after `to`. (After an out-of-order apply, "last" is the one applied
    last, not the highest number.) A migration whose file is missing appears as its bare ID (the
    executor refuses it).
    """
    if steps is not None and to is not None:
        raise UsageError("give STEPS or TO, not both")
    if not state.applied:
        return []
    newest_first = sorted(state.applied, key=lambda i: state.applied[i].sequence, reverse=True)
    if to is not None:
        target = find(state.files, to, state.database)
        if target.id not in state.applied:
            raise UsageError(f"{state.database}: {target.id} is not applied, so there is nothing to go back to")
        after = order_key(target.id)
        chosen = [i for i in newest_first if order_key(i) > after]
    else:
        count = 1 if steps is None else steps
        if count < 1:
            raise UsageError(f"STEPS must be 1 or more, not {count}")
        if count > len(newest_first):
            raise UsageError(
                f"{state.database}: STEPS={count} but only {len(newest_first)} migration(s) are applied: "
                f"use STEPS={len(newest_first)} to roll back all of them"
            )
        chosen = newest_first[:count]
    by_id = {m.id: m for m in state.files}
    return [by_id.get(i, i) for i in chosen]


@dataclass(frozen=True)
class Plan:
    """What a migrate applies of `state`, and what it says once they have run."""

    state: MigrationState
    files: list[MigrationFile]
    closing: list[str]  # up to date, or post-deploy migrations left pending: said after the run


def migrate_plan(state: MigrationState, to: str | None, allow_out_of_order: bool, phase: str | None) -> Plan:
    """A migrate's plan of `state` (forwards_plan), once no applied file changed or vanished."""
    state.check_integrity()
    files = forwards_plan(state, to, allow_out_of_order, phase)
    left = left_for_later(forwards_plan(state, to, True), phase)
    database = state.database
    done = (
        []
        if files
        else [f"{database}: {'no pre-deploy migration pending' if left else 'up to date, nothing to migrate'}"]
    )
    return Plan(state, files, done + ([describe_left(database, left)] if left else []))


# ---- deploy phases (phases.py): which pending migrations a PHASE applies ----


def select(plan: list[MigrationFile], phase: str | None) -> list[MigrationFile]:
    """The migrations of `plan` that `phase` applies: all of them, or (PHASE=pre) the pre-deploy ones."""
    return [m for m in plan if m.phase == phases.PRE] if phase == phases.PRE else list(plan)


def left_for_later(plan: list[MigrationFile], phase: str | None) -> list[MigrationFile]:
    """The post-deploy migrations of `plan` that PHASE=pre leaves pending."""
    return [m for m in plan if m.phase == phases.POST] if phase == phases.PRE else []


def waits_for_deploy(migration: MigrationFile, state: MigrationState) -> bool:
    """Whether pending `migration` is a post-deploy migration whose only applied successors are
    pre-deploy ones (the PHASE=pre run that left it for later): then it is not out of order."""
    if migration.phase != phases.POST:
        return False
    order = [m.id for m in state.files]
    if migration.id not in order:
        return False
    later = order[order.index(migration.id) + 1 :]
    by_id = {m.id: m for m in state.files}
    applied_later = [i for i in later if i in state.applied]
    unknown = [i for i in state.applied if i not in by_id]  # applied, file gone: its phase is unknown
    return not unknown and all(by_id[i].phase == phases.PRE for i in applied_later)


def describe_left(database: str, left: list[MigrationFile]) -> str:
    ids = ", ".join(m.id for m in left)
    return (
        f"{database}: {len(left)} post-deploy migration(s) left pending for after the deploy ({ids}): "
        f"run `make db-migrate DB={database}` once no old code is running"
    )
