"""Changes to orion's live tables, written as migrations into a test's copy of the fixture project:
the dangerous ones the issue names and their safe versions (docs/live-tables.md has both)."""

from __future__ import annotations

from pathlib import Path

from migration_files import write_sql_migration

NOTHING_TO_UNDO = "-- dbmigrate: nothing to undo\n"

# squawk reads text, so it also flags some of what the lock trace shows to be safe: these say why.
_RE_ADDED = {"ban-drop-constraint": "the foreign key is re-added at once, with ON DELETE changed"}
_PROVED = {
    "adding-not-nullable-field": "a validated CHECK (granted_at IS NOT NULL) exists: SET NOT NULL scans nothing",
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
    "907_assigned_at": (
        "ALTER TABLE user_roles ADD COLUMN assigned_at timestamptz NOT NULL DEFAULT clock_timestamp()",
        "ALTER TABLE user_roles DROP COLUMN assigned_at",
        True,
        {},
    ),
    "908_rate_limit_bigint": (
        "ALTER TABLE user_entitlements ALTER COLUMN rfq_rate_limit TYPE bigint",
        "ALTER TABLE user_entitlements ALTER COLUMN rfq_rate_limit TYPE integer",
        True,
        {},
    ),
    "909_email_check_valid": (
        "ALTER TABLE users ADD CONSTRAINT users_email_format\n"
        "    CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+[.][a-z]+$' AND username ~ '^[a-z0-9 ._-]+$')",
        "ALTER TABLE users DROP CONSTRAINT users_email_format",
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
    "915_granted_at_nullable": (
        "ALTER TABLE user_roles ADD COLUMN granted_at timestamptz;\n"
        "ALTER TABLE user_roles ALTER COLUMN granted_at SET DEFAULT clock_timestamp()",
        "ALTER TABLE user_roles DROP COLUMN granted_at",
        True,
        {},
    ),
    "916_granted_at_backfill": (
        # In batches of 1000 rows by primary key, each committed: a row is locked for one batch only.
        "DO $$\n"
        "DECLARE done uuid := '00000000-0000-0000-0000-000000000000'; upto uuid;\n"
        "BEGIN\n"
        "    LOOP\n"
        "        SELECT id INTO upto FROM (SELECT id FROM user_roles WHERE id > done ORDER BY id LIMIT 1000) batch\n"
        "        ORDER BY id DESC LIMIT 1;\n"
        "        EXIT WHEN upto IS NULL;\n"
        "        UPDATE user_roles SET granted_at = created_at\n"
        "        WHERE id > done AND id <= upto AND granted_at IS NULL;\n"
        "        done := upto;\n"
        "        COMMIT;\n"
        "    END LOOP;\n"
        "END $$",
        NOTHING_TO_UNDO,
        False,
        {},
    ),
    "917_granted_at_check": (
        "ALTER TABLE user_roles ADD CONSTRAINT user_roles_granted_at_not_null\n"
        "    CHECK (granted_at IS NOT NULL) NOT VALID",
        "ALTER TABLE user_roles DROP CONSTRAINT user_roles_granted_at_not_null",
        True,
        {},
    ),
    "918_granted_at_validate": (
        "ALTER TABLE user_roles VALIDATE CONSTRAINT user_roles_granted_at_not_null",
        "ALTER TABLE user_roles DROP CONSTRAINT user_roles_granted_at_not_null;\n"
        "ALTER TABLE user_roles ADD CONSTRAINT user_roles_granted_at_not_null\n"
        "    CHECK (granted_at IS NOT NULL) NOT VALID",
        True,
        {},
    ),
    "919_granted_at_not_null": (
        "ALTER TABLE user_roles ALTER COLUMN granted_at SET NOT NULL;\n"
        "ALTER TABLE user_roles DROP CONSTRAINT user_roles_granted_at_not_null",
        "ALTER TABLE user_roles ADD CONSTRAINT user_roles_granted_at_not_null\n"
        "    CHECK (granted_at IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE user_roles VALIDATE CONSTRAINT user_roles_granted_at_not_null;\n"
        "ALTER TABLE user_roles ALTER COLUMN granted_at DROP NOT NULL",
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
