"""Changes to orion's live tables, written as migrations into a test's copy of the fixture project:
the dangerous ones the issue names and their safe versions (docs/live-tables.md has both)."""

from __future__ import annotations

from pathlib import Path

from migration_files import write_sql_migration

NOTHING_TO_UNDO = "-- dbmigrate: nothing to undo\n"

# squawk reads text, so it also flags some of what the lock trace shows to be safe: these say why.
_RE_ADDED = {"ban-drop-constraint": "the foreign key is re-added at once, with ON DELETE changed"}
_PROVED = {
    "adding-not-nullable-field": "a validated CHECK (last_login_at IS NOT NULL) exists: SET NOT NULL scans nothing",
    "ban-drop-constraint": "the CHECK only proved NOT NULL, which the column now has",
}

# id: (forwards, backwards, transactional, SQUAWK_EXEMPT)
DANGEROUS = {
    "905_index_display_name": (
        "CREATE INDEX idx_users_display_name ON users (display_name)",
        "DROP INDEX idx_users_display_name",
        True,
        {},
    ),
    "906_roles_fk_validated": (
        "ALTER TABLE user_roles DROP CONSTRAINT user_roles_user_id_fkey;\n"
        "ALTER TABLE user_roles ADD CONSTRAINT user_roles_user_id_fkey\n"
        "    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT",
        "ALTER TABLE user_roles DROP CONSTRAINT user_roles_user_id_fkey;\n"
        "ALTER TABLE user_roles ADD CONSTRAINT user_roles_user_id_fkey\n"
        "    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE",
        True,
        {},
    ),
    "907_last_seen_at": (
        "ALTER TABLE users ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT clock_timestamp()",
        "ALTER TABLE users DROP COLUMN last_seen_at",
        True,
        {},
    ),
    "908_rate_limit_bigint": (
        "ALTER TABLE user_entitlements ALTER COLUMN rfq_rate_limit TYPE bigint",
        "ALTER TABLE user_entitlements ALTER COLUMN rfq_rate_limit TYPE integer",
        True,
        {},
    ),
    "909_limits_check_valid": (
        "ALTER TABLE user_entitlements ADD CONSTRAINT user_entitlements_limits_check\n"
        "    CHECK (max_open_orders >= 0 AND order_rate_limit >= 0)",
        "ALTER TABLE user_entitlements DROP CONSTRAINT user_entitlements_limits_check",
        True,
        {},
    ),
}

SAFE = {
    "910_index_concurrently": (
        "CREATE INDEX CONCURRENTLY idx_users_display_name_cc ON users (display_name)",
        "DROP INDEX CONCURRENTLY idx_users_display_name_cc",
        False,
        {},
    ),
    "911_entitlements_fk_not_valid": (
        "ALTER TABLE user_entitlements DROP CONSTRAINT user_entitlements_user_id_fkey;\n"
        "ALTER TABLE user_entitlements ADD CONSTRAINT user_entitlements_user_id_fkey\n"
        "    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT NOT VALID",
        "ALTER TABLE user_entitlements DROP CONSTRAINT user_entitlements_user_id_fkey;\n"
        "ALTER TABLE user_entitlements ADD CONSTRAINT user_entitlements_user_id_fkey\n"
        "    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE",
        True,
        _RE_ADDED,
    ),
    "912_entitlements_fk_validate": (
        "ALTER TABLE user_entitlements VALIDATE CONSTRAINT user_entitlements_user_id_fkey",
        "ALTER TABLE user_entitlements DROP CONSTRAINT user_entitlements_user_id_fkey;\n"
        "ALTER TABLE user_entitlements ADD CONSTRAINT user_entitlements_user_id_fkey\n"
        "    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT NOT VALID",
        True,
        {},
    ),
    "913_rfq_limit_check_not_valid": (
        "ALTER TABLE user_entitlements ADD CONSTRAINT user_entitlements_rfq_limit_check\n"
        "    CHECK (rfq_rate_limit >= 0) NOT VALID",
        "ALTER TABLE user_entitlements DROP CONSTRAINT user_entitlements_rfq_limit_check",
        True,
        {},
    ),
    "914_rfq_limit_check_validate": (
        "ALTER TABLE user_entitlements VALIDATE CONSTRAINT user_entitlements_rfq_limit_check",
        "ALTER TABLE user_entitlements DROP CONSTRAINT user_entitlements_rfq_limit_check;\n"
        "ALTER TABLE user_entitlements ADD CONSTRAINT user_entitlements_rfq_limit_check\n"
        "    CHECK (rfq_rate_limit >= 0) NOT VALID",
        True,
        {},
    ),
    "915_last_login_at_nullable": (
        "ALTER TABLE users ADD COLUMN last_login_at timestamptz;\n"
        "ALTER TABLE users ALTER COLUMN last_login_at SET DEFAULT clock_timestamp()",
        "ALTER TABLE users DROP COLUMN last_login_at",
        True,
        {},
    ),
    "916_last_login_at_backfill": (
        "DO $$\n"
        "DECLARE updated integer;\n"
        "BEGIN\n"
        "    LOOP\n"
        "        UPDATE users SET last_login_at = created_at\n"
        "        WHERE id IN (SELECT id FROM users WHERE last_login_at IS NULL LIMIT 2000);\n"
        "        GET DIAGNOSTICS updated = ROW_COUNT;\n"
        "        EXIT WHEN updated = 0;\n"
        "        COMMIT;\n"
        "    END LOOP;\n"
        "END $$",
        NOTHING_TO_UNDO,
        False,
        {},
    ),
    "917_last_login_at_check": (
        "ALTER TABLE users ADD CONSTRAINT users_last_login_at_not_null\n"
        "    CHECK (last_login_at IS NOT NULL) NOT VALID",
        "ALTER TABLE users DROP CONSTRAINT users_last_login_at_not_null",
        True,
        {},
    ),
    "918_last_login_at_validate": (
        "ALTER TABLE users VALIDATE CONSTRAINT users_last_login_at_not_null",
        "ALTER TABLE users DROP CONSTRAINT users_last_login_at_not_null;\n"
        "ALTER TABLE users ADD CONSTRAINT users_last_login_at_not_null\n"
        "    CHECK (last_login_at IS NOT NULL) NOT VALID",
        True,
        {},
    ),
    "919_last_login_at_not_null": (
        "ALTER TABLE users ALTER COLUMN last_login_at SET NOT NULL;\n"
        "ALTER TABLE users DROP CONSTRAINT users_last_login_at_not_null",
        "ALTER TABLE users ADD CONSTRAINT users_last_login_at_not_null\n"
        "    CHECK (last_login_at IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE users VALIDATE CONSTRAINT users_last_login_at_not_null;\n"
        "ALTER TABLE users ALTER COLUMN last_login_at DROP NOT NULL",
        True,
        _PROVED,
    ),
}


def write_live_migrations(project: Path, migrations: dict) -> list[Path]:
    """Write `migrations` (DANGEROUS or SAFE) into `project` as orion's migrations."""
    paths = []
    for migration_id, (forwards, backwards, transactional, squawk_exempt) in migrations.items():
        path = write_sql_migration(project, "orion", migration_id, forwards, backwards, transactional)
        if squawk_exempt:
            path.write_text(path.read_text() + f"\nSQUAWK_EXEMPT = {squawk_exempt!r}\n")
        paths.append(path)
    return paths
