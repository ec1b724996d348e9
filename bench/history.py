"""The bench's migration histories, generated deterministically and written in each tool's format.

`realistic(count)` is an identity-and-billing service's history: tables with primary keys, foreign
keys, unique and check constraints; indexes; plpgsql functions with dollar quotes (`$fn$`, `$$`,
a nested `$q$` inside EXECUTE format); triggers; DO blocks; views; enum types and comments; data
inserts and updates; and, about one in 33, a `CREATE INDEX CONCURRENTLY` that must run outside a
transaction. Every step has a down. The same steps are written as:

  * dbmate: `<version>_<name>.sql`, `-- migrate:up` (`transaction:false` for CIC) / `-- migrate:down`;
  * node-pg-migrate: `<number>_<name>.sql` with `-- Up Migration` / `-- Down Migration`; a CIC step
    is a `.cjs` migration calling `pgm.noTransaction()`, the only way node-pg-migrate has to run
    a migration outside its transaction (SQL migrations cannot say so);
  * Alembic: one revision script per step, `op.execute(...)`, CIC inside `op.get_context().autocommit_block()`;
  * psql in one session (the floor): `BEGIN; <up>; INSERT INTO bench_applied ...; COMMIT;` per
    step, a CIC step without BEGIN/COMMIT;
  * dbmigrate's own format: imported from the dbmate folder by `python -m dbmigrate import` (run.py),
    or written from the file `python -m dbmigrate create` produces (`write_native`).

Nothing here touches a database: run.py does that. `python bench/history.py DIR` writes every
format into DIR, to look at.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

FLOOR_TABLE = "bench_applied"  # the psql floor's bookkeeping table
FLOOR_BOOKKEEPING = (
    f"CREATE TABLE {FLOOR_TABLE} (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)


@dataclass(frozen=True)
class Step:
    name: str  # snake_case description
    up: str
    down: str
    concurrent: bool = False  # must run outside a transaction (one statement)


ENTITIES = [
    "tenant", "realm", "account", "identity", "credential", "session", "client", "client_secret",
    "grant", "consent", "token", "refresh_token", "device", "device_code", "role", "permission",
    "role_binding", "group", "membership", "invitation", "api_key", "webhook", "webhook_delivery",
    "audit_event", "login_attempt", "mfa_factor", "recovery_code", "email_verification", "plan",
    "subscription", "invoice", "invoice_line", "payment", "refund", "coupon", "usage_record",
    "feature_flag", "export_job", "import_job", "notification",
]  # fmt: skip


def _entity(i: int) -> str:
    base = ENTITIES[i % len(ENTITIES)]
    return base if i < len(ENTITIES) else f"{base}_{i // len(ENTITIES) + 1}"


def _table(i: int, prefix: str) -> str:
    name = _entity(i)
    return f"{prefix}{name[:-1]}ies" if name.endswith("y") and name[-2] not in "aeiou" else f"{prefix}{name}s"


def _entity_steps(i: int, prefix: str) -> list[Step]:
    """The steps of entity i: its table and what later migrations do to it (eight to ten steps)."""
    t = _table(i, prefix)
    parent = _table(i - 1, prefix) if i else None
    fk = f",\n    parent_id bigint REFERENCES {parent} (id) ON DELETE CASCADE" if parent else ""
    steps = [
        Step(
            f"create_{t}",
            f"""-- {t}: one row per {_entity(i).replace("_", " ")}; keys are bigserial, names unique per tenant.
CREATE TABLE {t} (
    id bigserial PRIMARY KEY,
    tenant_key text NOT NULL,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    score integer NOT NULL DEFAULT 0 CHECK (score >= 0),
    attributes jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(){fk},
    UNIQUE (tenant_key, name)
);
""",
            f"DROP TABLE {t};\n",
        ),
        Step(
            f"index_{t}_by_status",
            f"CREATE INDEX {t}_status_idx ON {t} (status, created_at DESC) WHERE status <> 'deleted';\n",
            f"DROP INDEX {t}_status_idx;\n",
        ),
        Step(
            f"touch_{t}_updated_at",
            f"""-- Keeps updated_at current; the body is dollar-quoted and holds semicolons.
CREATE FUNCTION {t}_touch() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.updated_at := now();
    IF NEW.status = 'deleted' AND OLD.status <> 'deleted' THEN
        NEW.attributes := NEW.attributes || jsonb_build_object('deleted', true);
    END IF;
    RETURN NEW;
END;
$fn$;

CREATE TRIGGER {t}_touch BEFORE UPDATE ON {t}
    FOR EACH ROW EXECUTE FUNCTION {t}_touch();
""",
            f"DROP TRIGGER {t}_touch ON {t};\nDROP FUNCTION {t}_touch();\n",
        ),
        Step(
            f"seed_{t}",
            f"""INSERT INTO {t} (tenant_key, name, score, attributes)
SELECT 'tenant-' || (g % 7), '{_entity(i)} ' || g || '; #' || g, g * 3,
       jsonb_build_object('rank', g, 'label', 'it''s number ' || g)
FROM generate_series(1, 40) AS g;
""",
            f"DELETE FROM {t} WHERE name LIKE '{_entity(i)} %';\n",
        ),
        Step(
            f"add_{t}_external_ref_if_missing",
            f"""DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_name = '{t}' AND column_name = 'external_ref'
    ) THEN
        ALTER TABLE {t} ADD COLUMN external_ref text;
        RAISE NOTICE 'added %.external_ref (100%% backfilled later)', '{t}';
    END IF;
END
$$;
""",
            f"ALTER TABLE {t} DROP COLUMN external_ref;\n",
        ),
        Step(
            f"backfill_{t}_external_ref",
            f"""UPDATE {t} SET external_ref = 'ext-' || id WHERE external_ref IS NULL;
UPDATE {t} SET score = score + 1 WHERE status = 'active' AND score < 100;
""",
            f"""UPDATE {t} SET external_ref = NULL;
UPDATE {t} SET score = score - 1 WHERE status = 'active' AND score <= 100;
""",
        ),
        Step(
            f"count_{t}_function",
            f"""CREATE FUNCTION {t}_count(p_status text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    result bigint;
BEGIN
    EXECUTE format($q$SELECT count(*) FROM {t} WHERE $1 IS NULL OR status = $1$q$)
        INTO result USING p_status;
    RETURN result;
END;
$body$;

COMMENT ON FUNCTION {t}_count(text) IS 'Rows of {t}; with a status, only those (a $ sign: fine).';
""",
            f"DROP FUNCTION {t}_count(text);\n",
        ),
        Step(
            f"create_{t}_active_view",
            f"""CREATE VIEW {t}_active AS
    SELECT id, tenant_key, name, score, external_ref FROM {t} WHERE status = 'active';

COMMENT ON VIEW {t}_active IS 'Active {_entity(i).replace("_", " ")}s';
""",
            f"DROP VIEW {t}_active;\n",
        ),
    ]
    if i % 4 == 3:  # about one in 33 steps: an index built without blocking writes
        steps.append(
            Step(
                f"index_{t}_external_ref_concurrently",
                f"CREATE INDEX CONCURRENTLY {t}_external_ref_idx ON {t} (external_ref);\n",
                f"DROP INDEX CONCURRENTLY {t}_external_ref_idx;\n",
                concurrent=True,
            )
        )
    if i % 5 == 1:
        steps.append(
            Step(
                f"create_{t}_kind_enum",
                f"""CREATE TYPE {t}_kind AS ENUM ('standard', 'premium', 'internal');
ALTER TABLE {t} ADD COLUMN kind {t}_kind NOT NULL DEFAULT 'standard';
UPDATE {t} SET kind = 'premium' WHERE score > 60;
""",
                f"ALTER TABLE {t} DROP COLUMN kind;\nDROP TYPE {t}_kind;\n",
            )
        )
    return steps


def realistic(count: int = 330, prefix: str = "") -> list[Step]:
    """At least `count` steps (whole entities: a few more), the same every time."""
    steps: list[Step] = []
    i = 0
    while len(steps) < count:
        steps.extend(_entity_steps(i, prefix))
        i += 1
    return steps


def small(count: int) -> list[Step]:
    """`count` one-table migrations: the per-migration cost with almost no SQL."""
    return [
        Step(f"bench_t_{n}", f"CREATE TABLE bench_t_{n} (id int);\n", f"DROP TABLE bench_t_{n};\n")
        for n in range(count)
    ]


def big_inserts(rows: int) -> Step:
    """One migration of `rows` INSERT statements (200,000 make about 50 MB)."""
    filler = "x" * 180
    lines = [
        "CREATE TABLE bench_big (id integer PRIMARY KEY, label text NOT NULL, note text);\n",
        *(
            f"INSERT INTO bench_big (id, label, note) VALUES ({n}, 'row {n}; not a statement end', '{filler}');\n"
            for n in range(rows)
        ),
    ]
    return Step("bench_big_inserts", "".join(lines), "DROP TABLE bench_big;\n")


# ---- each tool's format ------------------------------------------------------------------------


def version(n: int) -> str:
    """The n-th migration's version: 14 digits, dbmate's timestamp layout, ordered as numbers and text."""
    return f"2024{n + 1:010d}"


def write_dbmate(steps: list[Step], folder: Path, first: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, step in enumerate(steps, first):
        option = " transaction:false" if step.concurrent else ""
        text = f"-- migrate:up{option}\n{step.up}\n-- migrate:down{option}\n{step.down}"
        (folder / f"{version(n)}_{step.name}.sql").write_text(text)
    return folder


NODE_NO_TRANSACTION = """// Runs outside node-pg-migrate's transaction: SQL migrations cannot ask for that.
exports.up = (pgm) => {{
  pgm.noTransaction();
  pgm.sql({up});
}};

exports.down = (pgm) => {{
  pgm.noTransaction();
  pgm.sql({down});
}};
"""


def _js_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def write_node_pg_migrate(steps: list[Step], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, step in enumerate(steps):
        stem = f"{version(n)}_{step.name}"
        if step.concurrent:
            js = NODE_NO_TRANSACTION.format(up=_js_string(step.up), down=_js_string(step.down))
            (folder / f"{stem}.cjs").write_text(js)
        else:
            (folder / f"{stem}.sql").write_text(f"-- Up Migration\n{step.up}\n-- Down Migration\n{step.down}")
    return folder


ALEMBIC_INI = """[alembic]
script_location = %(here)s/alembic
path_separator = os

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

# The env.py `alembic init` writes, online mode only, the URL from the environment: one transaction
# for the whole upgrade (Alembic's default, transaction_per_migration=False).
ALEMBIC_ENV = """import os

from alembic import context
from sqlalchemy import create_engine, pool

connectable = create_engine(os.environ["BENCH_ALEMBIC_URL"], poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""

ALEMBIC_REVISION = '''"""{name}

Revision ID: {revision}
Revises: {down_revision}
"""

from alembic import op

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None

UP = {up!r}
DOWN = {down!r}


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def _alembic_body(name: str, concurrent: bool) -> str:
    if concurrent:
        return f"    with op.get_context().autocommit_block():\n        op.execute({name})"
    return f"    op.execute({name})"


def write_alembic(steps: list[Step], folder: Path) -> Path:
    """An Alembic project: alembic.ini, alembic/env.py and one revision per step in alembic/versions/."""
    versions = folder / "alembic" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (folder / "alembic.ini").write_text(ALEMBIC_INI)
    (folder / "alembic" / "env.py").write_text(ALEMBIC_ENV)
    previous = None
    for n, step in enumerate(steps):
        revision = f"r{version(n)}"
        text = ALEMBIC_REVISION.format(
            name=step.name,
            revision=revision,
            down_revision=previous,
            up=_alembic_sql(step.up),
            down=_alembic_sql(step.down),
            upgrade=_alembic_body("UP", step.concurrent),
            downgrade=_alembic_body("DOWN", step.concurrent),
        )
        (versions / f"{revision}_{step.name}.py").write_text(text)
        previous = revision
    return folder


def _alembic_sql(sql: str) -> str:
    """op.execute() turns a string into sqlalchemy's text(), where `:name` is a bound parameter:
    escape colons that are not casts (the history has none today; a safeguard)."""
    return re.sub(r"(?<![:\w\\]):(?=\w)", r"\\:", sql)


def write_psql_floor(steps: list[Step], path: Path) -> Path:
    """What a migration costs at least, in one psql session: its own transaction, its SQL and one
    bookkeeping row (a step that must run outside a transaction: the SQL and the row, in autocommit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"{FLOOR_BOOKKEEPING};\n"]
    for n, step in enumerate(steps):
        record = f"INSERT INTO {FLOOR_TABLE} (version) VALUES ('{version(n)}');\n"
        parts.append(f"{step.up}{record}" if step.concurrent else f"BEGIN;\n{step.up}{record}COMMIT;\n")
    path.write_text("".join(parts))
    return path


# ---- dbmigrate's own format, from the file its `create` command writes ------------------------


def write_native(
    template: str, steps: list[Step], folder: Path, app: str, first_number: int, width: int = 3
) -> list[Path]:
    """Native migrations of `app`, numbered from `first_number` with `width` digits (`create` writes 3),
    each made from `template`: the text of a migration `python -m dbmigrate create` wrote (its ID,
    description and SQL replaced)."""
    written = []
    for number, step in enumerate(steps, first_number):
        migration_id = f"{number:0{width}d}_{step.name}"
        text = template
        for pattern, value in (
            (r'^ID = "[^\n]*"$', f"ID = {migration_id!r}"),
            (r"^DESCRIPTION = [^\n]*$", f"DESCRIPTION = {step.name!r}"),
            (r'^FORWARDS_SQL = """.*?"""$', f"FORWARDS_SQL = {step.up!r}"),
            (r'^BACKWARDS_SQL = """.*?"""$', f"BACKWARDS_SQL = {step.down!r}"),
        ):
            text, found = re.subn(pattern, lambda _, v=value: v, text, count=1, flags=re.M | re.S)
            if not found:
                raise ValueError(f"the template `dbmigrate create` wrote has no {pattern!r} line")
        path = folder / f"{app}_{migration_id}.py"
        path.write_text(text)
        written.append(path)
    return written


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-history")
    steps = realistic()
    write_dbmate(steps, out / "dbmate")
    write_node_pg_migrate(steps, out / "node-pg-migrate")
    write_alembic(steps, out / "alembic")
    write_psql_floor(steps, out / "psql.sql")
    concurrent = sum(s.concurrent for s in steps)
    print(f"{len(steps)} migrations ({concurrent} non-transactional) in each format under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
