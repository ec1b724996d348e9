"""Issue 19, "Safe on a live database": db-verify traces what each migration locks, rewrites and
scans on its scratch database, and fails a migration that would block a table that existed before
it, naming the file, the line, the lock and the safe recipe; the safe versions pass."""

from __future__ import annotations

import json

import jsonschema
from live_tables import DANGEROUS, SAFE, write_live_migrations
from migration_files import write_python_migration, write_sql_migration
from support import Databases

from dbmigrate.commands.safety import SCHEMA_PATH

MIGRATIONS = "orion/piccolo_migrations"


def finding(stderr: str, migration_id: str, rule: str) -> tuple[str, str]:
    """verify's problem line for `rule` in `migration_id`, and the recipe indented below it."""
    lines = stderr.splitlines()
    index = next(i for i, line in enumerate(lines) if f"safety: {migration_id}: " in line and f": {rule}: " in line)
    detail = []
    for line in lines[index + 1 :]:
        if not line.startswith("    "):
            break
        detail.append(line.strip())
    return lines[index], "\n".join(detail)


def test_each_dangerous_change_to_a_live_table_fails_verify_with_the_lock_and_its_recipe(project, dbs: Databases):
    write_live_migrations(project, DANGEROUS)
    write_sql_migration(
        project,
        "orion",
        "920_display_name_not_null",
        "ALTER TABLE users ALTER COLUMN display_name SET NOT NULL",
        "ALTER TABLE users ALTER COLUMN display_name DROP NOT NULL",
    )
    unbounded = write_sql_migration(
        project, "orion", "921_note", "ALTER TABLE users ADD COLUMN note text", "ALTER TABLE users DROP COLUMN note"
    )
    unbounded.write_text(unbounded.read_text() + '\nLOCK_TIMEOUT = "0"\n')
    result = dbs.cli("verify", "orion", expect=1)
    out = result.stdout
    expected = {
        "905_index_display_name": (
            "index-without-concurrently",
            "under SHARE on users",
            "CREATE INDEX CONCURRENTLY idx_users_display_name ON users (display_name);",
        ),
        "906_roles_fk_validated": (
            "constraint-without-not-valid",
            "while SHARE ROW EXCLUSIVE blocks writes on it",
            "ALTER TABLE user_roles VALIDATE CONSTRAINT user_roles_user_id_fkey;",
        ),
        "907_assigned_at": (
            "rewrites-table",
            "rewrites user_roles under ACCESS EXCLUSIVE",
            "ALTER TABLE user_roles ADD COLUMN assigned_at timestamptz;",
        ),
        "908_rate_limit_bigint": (
            "changes-column-type",
            "rewrites user_entitlements under ACCESS EXCLUSIVE",
            "ALTER TABLE user_entitlements ADD COLUMN rfq_rate_limit_new bigint;",
        ),
        "909_email_check_valid": (
            "constraint-without-not-valid",
            "while ACCESS EXCLUSIVE blocks every read and write on it",
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_format;",
        ),
        "920_display_name_not_null": (
            "set-not-null-scans",
            "scans every row under ACCESS EXCLUSIVE",
            "CHECK (display_name IS NOT NULL) NOT VALID;",
        ),
        "921_note": ("no-lock-timeout", "ACCESS EXCLUSIVE on users with lock_timeout off", 'LOCK_TIMEOUT = "5s"'),
    }
    for migration_id, (rule, lock, recipe) in expected.items():
        problem, detail = finding(result.stderr, migration_id, rule)
        assert problem.startswith(f"orion: FAIL safety: {migration_id}: {MIGRATIONS}/orion_{migration_id}.py line ")
        assert lock in problem and recipe in detail, (problem, detail)
        block = out[out.index(f"trace {migration_id} ") :].split("orion: trace ")[0]
        assert f"finding: {rule}" in block, block
    # The foreign key also validates while the transaction still holds the ACCESS EXCLUSIVE its DROP took.
    problem, _ = finding(result.stderr, "906_roles_fk_validated", "slow-after-access-exclusive")
    assert "holds ACCESS EXCLUSIVE on user_roles (taken by line " in problem
    # The trace itself, as PostgreSQL reported it: the lock, the rewrite, the scan.
    assert "line 12 CREATE INDEX: SHARE on users (blocks writes) held " in out
    assert "rewrites user_roles and its 3 index(es); reads user_roles (rewrite)" in out
    assert "reads users (validate); adds CHECK users_email_format" in out

    untraced = dbs.cli("verify", "orion", "--trace", "0", expect=1)
    assert "skip safety: TRACE=0" in untraced.stdout
    assert "index-without-concurrently" not in untraced.stdout + untraced.stderr


def test_the_safe_versions_pass_verify_and_the_json_trace_follows_its_schema(project, dbs: Databases, tmp_path):
    write_live_migrations(project, SAFE)
    dbs.cli("schema-dump", "orion")
    summary = tmp_path / "summary.md"
    result = dbs.cli("verify", "orion", "--format", "json", "--summary", str(summary))
    assert "orion: ok   safety: 12 migration(s) traced statement by statement" in result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    (database,) = document["databases"]
    assert database["ok"] is True
    traces = {m["migration"]: m for m in database["migrations"]}
    assert all(not m["findings"] for m in traces.values())

    (build,) = traces["910_index_concurrently"]["statements"]
    assert build["transaction"] == "none"  # CONCURRENTLY refuses a transaction block: its locks are sampled
    # The table's lock; a slow build may also be sampled holding a lock on the index it creates,
    # which sorts first by name.
    (on_users,) = [lock for lock in build["locks"] if lock["relation"] == "users"]
    assert {"mode": "SHARE UPDATE EXCLUSIVE", "relation": "users"}.items() <= on_users.items()
    assert on_users["existed"] is True
    assert {lock["relation"] for lock in build["locks"]} <= {"users", "idx_users_display_name_cc"}
    assert build["created"] == [
        {"relation": "idx_users_display_name_cc", "kind": "index", "existed": False, "table": "users"}
    ]

    (validate,) = traces["912_entitlements_fk_validate"]["statements"]
    modes = {(lock["relation"], lock["mode"]) for lock in validate["locks"]}
    assert {("user_entitlements", "SHARE UPDATE EXCLUSIVE"), ("users", "ROW SHARE")} <= modes
    assert validate["scans"] == [{"table": "user_entitlements", "existed": True, "purpose": "validate"}]
    assert validate["constraints"][0]["event"] == "validated"

    set_not_null = traces["919_granted_at_not_null"]["statements"][0]
    assert set_not_null["scans"] == []  # the validated CHECK proves it: PostgreSQL reads no row
    assert ("user_roles", "ACCESS EXCLUSIVE") in {(lock["relation"], lock["mode"]) for lock in set_not_null["locks"]}

    backfill = traces["916_granted_at_backfill"]["statements"][0]
    assert backfill["command"] == "DO" and backfill["transaction"] == "own"

    text = summary.read_text()
    assert text.startswith("### Lock trace: orion (nothing blocks a table that existed)")
    assert "| 910_index_concurrently | line 12 | `CREATE INDEX CONCURRENTLY" in text
    assert "SHARE UPDATE EXCLUSIVE users" in text and "❌" not in text


def test_a_migration_accepts_a_finding_only_with_a_reason_and_imported_ones_are_not_judged(project, dbs: Databases):
    def index_migration(migration_id: str, column: str, extra: str):
        path = write_sql_migration(
            project,
            "orion",
            migration_id,
            f"CREATE INDEX idx_{migration_id} ON users ({column})",
            f"DROP INDEX idx_{migration_id}",
        )
        path.write_text(path.read_text() + "\nSQUAWK_EXEMPT = {'require-concurrent-index-creation': 'see safety'}\n")
        path.write_text(path.read_text() + extra)

    index_migration("905_unreasoned", "display_name", 'SAFETY_ACCEPTED = {"index-without-concurrently": " "}\n')
    index_migration("906_misnamed", "username", 'SAFETY_ACCEPTED = {"index-without-concurency": "typo"}\n')
    index_migration("907_reasoned", "status", 'SAFETY_ACCEPTED = {"index-without-concurrently": "users has 40 rows"}\n')
    index_migration("908_imported", "created_at", 'SOURCE_TOOL = "dbmate"\n')
    write_python_migration(
        project,
        "orion",
        "909_piccolo_raw",
        """
manager = MigrationManager(migration_id=ID, app_name="orion")

async def index():
    await engine_finder().run_ddl("CREATE INDEX idx_users_updated_at ON users (updated_at)")

async def unindex():
    await engine_finder().run_ddl("DROP INDEX idx_users_updated_at")

manager.add_raw(index)
manager.add_raw_backwards(unindex)
return manager
""",
    )
    result = dbs.cli("verify", "orion", expect=1)
    out = result.stdout
    err = "\n".join(line for line in result.stderr.splitlines() if "FAIL safety: " in line)
    assert "905_unreasoned: SAFETY_ACCEPTED needs a reason for index-without-concurrently" in err
    assert "905_unreasoned: orion/piccolo_migrations/orion_905_unreasoned.py line 12: index-without-concurrently" in err
    assert "906_misnamed: SAFETY_ACCEPTED names 'index-without-concurency', which is not a rule" in err
    assert "907_reasoned" not in err
    accepted = "accepted index-without-concurrently at orion/piccolo_migrations/orion_907_reasoned.py line 12"
    assert f"{accepted}: users has 40 rows" in out
    assert "908_imported" not in err
    assert "trace 908_imported (transactional, lock_timeout 5s, 1 statement(s), " in out
    assert "not judged: imported from dbmate: applied already" in out.split("trace 908_imported")[1].splitlines()[0]
    # Piccolo's raw step sends its SQL through the traced connection: no line, the statement's number.
    assert "909_piccolo_raw: orion/piccolo_migrations/orion_909_piccolo_raw.py: index-without-concurrently" in err
