"""verify's phases check: the migrations a deploy brings still build the right schema when their
pre-deploy migrations run first and their post-deploy ones after the deploy (engine/phases.py).

The rule it proves: a pre-deploy migration may not depend on a post-deploy migration of the same
deploy. The deploy's migrations are those not on the base branch (all of them, when there is no
base to compare with). On a second scratch database the ones on the base are applied in order,
then `PHASE=pre` and then everything, as a deploy runs them; the result must equal the catalog
(server/catalog.py) of the scratch database verify migrated in order. A pre-deploy migration that
fails there, or a different schema, is the problem reported. Nothing is run when no pre-deploy
migration follows a post-deploy one in the deploy: then the two orders are the same.
"""

from __future__ import annotations

from pathlib import Path

from dbmigrate.commands.scratch import scratch_database
from dbmigrate.core.errors import UserError
from dbmigrate.core.reporting import quiet
from dbmigrate.engine import executor
from dbmigrate.engine.files import MigrationFile
from dbmigrate.engine.phases import POST, PRE
from dbmigrate.engine.target import Target
from dbmigrate.server.catalog import first_difference, schema_catalog

NAME = "phases"


def deploy_of(target: Target, on_base: set[Path] | None) -> tuple[list[MigrationFile], list[MigrationFile]]:
    """(migrations on the base branch, the migrations the deploy brings), each in order."""
    deployed = [m for m in target.files if on_base is not None and m.path in on_base]
    return deployed, [m for m in target.files if m not in deployed]


def reordered(pending: list[MigrationFile]) -> list[MigrationFile]:
    """The post-deploy migrations that PHASE=pre would let a later pre-deploy migration overtake."""
    overtaken = []
    for index, migration in enumerate(pending):
        if migration.phase == POST and any(m.phase == PRE for m in pending[index + 1 :]):
            overtaken.append(migration)
    return overtaken


async def check(migrated: Target, report, on_base: set[Path] | None, completed: bool) -> None:
    """`migrated`: verify's scratch database, with every migration applied in order (when `completed`)."""
    deployed, pending = deploy_of(migrated, on_base)
    overtaken = reordered(pending)
    if not overtaken:
        report.check(NAME, [], "no pre-deploy migration follows a post-deploy one of the same deploy")
        return
    if not completed:
        report.skip(NAME, "the migrations did not all apply in order, so the deploy's order is not compared")
        return
    posts = ", ".join(m.id for m in overtaken)
    problems: list[str] = []
    async with migrated.connected("phases") as conn:
        in_order = await schema_catalog(conn)
    async with scratch_database(migrated) as scratch:
        try:
            with quiet():
                if deployed:
                    await executor.migrate(scratch, to=deployed[-1].id, allow_out_of_order=True)
                await executor.migrate(scratch, phase=PRE)
        except UserError as error:
            problems.append(
                f"with PHASE=pre the pre-deploy migrations run before the post-deploy {posts} of the same deploy, "
                f"and then {error}. A pre-deploy migration may not depend on a post-deploy one it follows: make it "
                "post-deploy too, or ship the post-deploy migration in an earlier deploy"
            )
        if not problems:
            with quiet():
                await executor.migrate(scratch)
            async with scratch.connected("phases") as conn:
                difference = first_difference(in_order, await schema_catalog(conn))
            if difference:
                problems.append(
                    f"pre-deploy migrations first, then the post-deploy {posts}, give another schema than applying "
                    f"them in order: {difference}"
                )
    report.check(NAME, problems, f"pre-deploy migrations first, post-deploy {posts} after the deploy: the same schema")
