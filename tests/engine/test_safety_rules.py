"""The safety policy on made-up lock traces (no server): each rule fails what would block a table
that existed before the migration, names the file, the line and the lock, gives its recipe, and
leaves tables the migration created alone."""

from __future__ import annotations

from dbmigrate.engine import safety_rules
from dbmigrate.engine.statement_facts import Action
from dbmigrate.engine.trace_model import (
    ConstraintEvent,
    Lock,
    MigrationTrace,
    RelationChange,
    Scan,
    StatementTrace,
)

FILE = "orion/piccolo_migrations/orion_905_x.py"


def statement(sql: str, command: str, table: str | None = "users", number: int = 1, **facts) -> StatementTrace:
    return StatementTrace(
        number=number,
        file=FILE,
        line=10 + number,
        sql=sql,
        command=command,
        table=table,
        actions=facts.pop("actions", []),
        transaction=facts.pop("transaction", "migration"),
        duration_ms=1.0,
        lock_timeout=facts.pop("lock_timeout", "5s"),
        **facts,
    )


def trace(*statements: StatementTrace, transactional: bool = True) -> MigrationTrace:
    return MigrationTrace("orion", "905_x", FILE, transactional, "5s", "30min", 5.0, list(statements))


def lock(mode: str, relation: str = "users", existed: bool = True, kind: str = "table") -> Lock:
    return Lock(mode, relation, kind, existed, 2.0)


def rules_of(found) -> list[str]:
    return [f.rule for f in found]


def plain_index(existed: bool) -> StatementTrace:
    return statement(
        "CREATE INDEX idx_users_display_name ON users (display_name)",
        "CREATE INDEX",
        locks=[lock("SHARE", existed=existed), lock("ACCESS EXCLUSIVE", "idx_users_display_name", False, "index")],
        created=[RelationChange("idx_users_display_name", "index", False, "users")],
        scans=[Scan("users", existed, "index build")],
    )


def test_an_index_built_without_concurrently_on_an_existing_table_is_found_with_its_concurrent_recipe():
    found = safety_rules.findings(trace(plain_index(existed=True)))
    assert rules_of(found) == ["index-without-concurrently"]
    finding = found[0]
    assert (finding.file, finding.line, finding.lock) == (FILE, 11, "SHARE on users")
    assert "CREATE INDEX CONCURRENTLY idx_users_display_name ON users (display_name);" in finding.recipe
    assert "TRANSACTION=0" in finding.recipe


def test_an_index_on_a_table_the_migration_creates_is_exempt():
    assert safety_rules.findings(trace(plain_index(existed=False))) == []


def test_a_concurrent_build_passes():
    concurrent = statement(
        "CREATE INDEX CONCURRENTLY i ON users (display_name)",
        "CREATE INDEX CONCURRENTLY",
        transaction="none",
        locks=[lock("SHARE UPDATE EXCLUSIVE")],
        created=[RelationChange("i", "index", False, "users")],
    )
    assert safety_rules.findings(trace(concurrent, transactional=False)) == []


def test_a_unique_constraint_added_to_an_existing_table_gets_the_using_index_recipe():
    added = statement(
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "ALTER TABLE",
        actions=[Action("ADD CONSTRAINT", "users_email_key", "UNIQUE")],
        locks=[lock("ACCESS EXCLUSIVE")],
        created=[RelationChange("users_email_key", "index", False, "users")],
    )
    (finding,) = safety_rules.findings(trace(added))
    assert finding.rule == "index-without-concurrently"
    assert "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users" in finding.recipe
    assert "ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key" in finding.recipe


def test_a_validated_foreign_key_is_found_with_the_not_valid_then_validate_recipe():
    sql = "ALTER TABLE user_roles ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id)"
    added = statement(
        sql,
        "ALTER TABLE",
        table="user_roles",
        actions=[Action("ADD CONSTRAINT", "fk", "FOREIGN KEY")],
        locks=[lock("SHARE ROW EXCLUSIVE", "user_roles"), lock("SHARE ROW EXCLUSIVE", "users")],
        scans=[Scan("user_roles", True, "validate")],
        constraints=[ConstraintEvent("fk", "FOREIGN KEY", "user_roles", True, "added", True)],
    )
    (finding,) = safety_rules.findings(trace(added))
    assert finding.rule == "constraint-without-not-valid"
    assert finding.lock == "SHARE ROW EXCLUSIVE on user_roles"
    assert f"{sql} NOT VALID;" in finding.recipe
    assert "ALTER TABLE user_roles VALIDATE CONSTRAINT fk;" in finding.recipe


def test_a_constraint_added_not_valid_and_one_validated_later_pass():
    not_valid = statement(
        "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
        "ALTER TABLE",
        locks=[lock("ACCESS EXCLUSIVE")],
        constraints=[ConstraintEvent("c", "CHECK", "users", True, "added", False)],
    )
    validate = statement(
        "ALTER TABLE users VALIDATE CONSTRAINT c",
        "ALTER TABLE",
        locks=[lock("SHARE UPDATE EXCLUSIVE")],
        scans=[Scan("users", True, "validate")],
        constraints=[ConstraintEvent("c", "CHECK", "users", True, "validated", True)],
    )
    assert safety_rules.findings(trace(not_valid)) == []
    assert safety_rules.findings(trace(validate)) == []


def test_validating_in_the_transaction_that_took_access_exclusive_holds_that_lock_through_the_scan():
    not_valid = statement(
        "ALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
        "ALTER TABLE",
        locks=[lock("ACCESS EXCLUSIVE")],
        constraints=[ConstraintEvent("c", "CHECK", "users", True, "added", False)],
    )
    validate = statement(
        "ALTER TABLE users VALIDATE CONSTRAINT c",
        "ALTER TABLE",
        number=2,
        locks=[lock("SHARE UPDATE EXCLUSIVE")],
        scans=[Scan("users", True, "validate")],
        constraints=[ConstraintEvent("c", "CHECK", "users", True, "validated", True)],
    )
    (finding,) = safety_rules.findings(trace(not_valid, validate))
    assert (finding.rule, finding.line, finding.lock) == (
        "slow-after-access-exclusive",
        12,
        "ACCESS EXCLUSIVE on users",
    )
    assert "taken by line 11" in finding.problem


def test_set_not_null_that_scans_is_found_and_one_proved_by_a_check_passes():
    action = [Action("SET NOT NULL", "display_name")]
    scanning = statement(
        "ALTER TABLE users ALTER COLUMN display_name SET NOT NULL",
        "ALTER TABLE",
        actions=action,
        locks=[lock("ACCESS EXCLUSIVE")],
        scans=[Scan("users", True, "validate")],
    )
    (finding,) = safety_rules.findings(trace(scanning))
    assert finding.rule == "set-not-null-scans"
    assert "CHECK (display_name IS NOT NULL) NOT VALID" in finding.recipe
    assert "VALIDATE CONSTRAINT users_display_name_not_null" in finding.recipe
    proved = statement(scanning.sql, "ALTER TABLE", actions=action, locks=[lock("ACCESS EXCLUSIVE")])
    assert safety_rules.findings(trace(proved)) == []


def test_a_volatile_default_rewrite_is_found_with_the_nullable_column_and_backfill_recipe():
    sql = "ALTER TABLE users ADD COLUMN seen timestamptz NOT NULL DEFAULT clock_timestamp()"
    rewrite = statement(
        sql,
        "ALTER TABLE",
        actions=[Action("ADD COLUMN", "seen", "timestamptz", has_default=True, not_null=True)],
        locks=[lock("ACCESS EXCLUSIVE")],
        rewrites=[RelationChange("users", "table", True), RelationChange("users_pkey", "index", True, "users")],
        scans=[Scan("users", True, "rewrite")],
    )
    (finding,) = safety_rules.findings(trace(rewrite))
    assert finding.rule == "rewrites-table"
    assert "ALTER TABLE users ADD COLUMN seen timestamptz;" in finding.recipe
    assert "SET DEFAULT clock_timestamp()" in finding.recipe
    assert "CHECK (seen IS NOT NULL) NOT VALID" in finding.recipe


def test_a_type_change_that_rewrites_is_its_own_rule_and_truncate_is_no_rewrite():
    retype = statement(
        "ALTER TABLE user_entitlements ALTER COLUMN rfq_rate_limit TYPE bigint",
        "ALTER TABLE",
        table="user_entitlements",
        actions=[Action("ALTER COLUMN TYPE", "rfq_rate_limit", "bigint")],
        locks=[lock("ACCESS EXCLUSIVE", "user_entitlements")],
        rewrites=[RelationChange("user_entitlements", "table", True)],
    )
    (finding,) = safety_rules.findings(trace(retype))
    assert finding.rule == "changes-column-type"
    assert "ADD COLUMN rfq_rate_limit_new bigint" in finding.recipe
    truncate = statement(
        "TRUNCATE users",
        "TRUNCATE",
        locks=[lock("ACCESS EXCLUSIVE")],
        rewrites=[RelationChange("users", "table", True)],
    )
    assert safety_rules.findings(trace(truncate)) == []


def test_a_backfill_after_access_exclusive_in_one_transaction_is_found_but_not_in_separate_ones():
    add = statement("ALTER TABLE users ADD COLUMN x int", "ALTER TABLE", locks=[lock("ACCESS EXCLUSIVE")])
    backfill = statement("UPDATE users SET x = 1", "UPDATE", number=2, locks=[lock("ROW EXCLUSIVE")], writes=["users"])
    (finding,) = safety_rules.findings(trace(add, backfill))
    assert (finding.rule, finding.line) == ("slow-after-access-exclusive", 12)
    assert "writes rows of users" in finding.problem
    own = [
        statement(add.sql, "ALTER TABLE", transaction="own", locks=[lock("ACCESS EXCLUSIVE")]),
        statement(backfill.sql, "UPDATE", number=2, transaction="own", writes=["users"]),
    ]
    assert safety_rules.findings(trace(*own, transactional=False)) == []


def test_a_strong_lock_without_lock_timeout_is_found_once():
    first = statement(
        "ALTER TABLE users ADD COLUMN x int", "ALTER TABLE", lock_timeout="0", locks=[lock("ACCESS EXCLUSIVE")]
    )
    second = statement("ALTER TABLE users ADD COLUMN y int", "ALTER TABLE", number=2, lock_timeout="0", locks=[])
    (finding,) = safety_rules.findings(trace(first, second))
    assert (finding.rule, finding.lock) == ("no-lock-timeout", "ACCESS EXCLUSIVE on users")
    assert 'LOCK_TIMEOUT = "0"' in finding.recipe
    weak = statement("SELECT * FROM users", "SELECT", lock_timeout="0", locks=[lock("ACCESS SHARE")])
    assert safety_rules.findings(trace(weak)) == []


def test_another_validating_scan_under_a_write_blocking_lock_is_found():
    narrowing = statement(
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100)",
        "ALTER TABLE",
        actions=[Action("ALTER COLUMN TYPE", "email", "varchar(100)")],
        locks=[lock("ACCESS EXCLUSIVE")],
        scans=[Scan("users", True, "validate")],
    )
    (finding,) = safety_rules.findings(trace(narrowing))
    assert (finding.rule, finding.lock) == ("scans-under-lock", "ACCESS EXCLUSIVE on users")


def test_every_rule_has_a_name_in_the_json_schema():
    import json
    from pathlib import Path

    schema = json.loads((Path(safety_rules.__file__).parent.parent / "schemas" / "trace.schema.json").read_text())
    assert sorted(schema["$defs"]["rule"]["enum"]) == sorted(safety_rules.RULES)
