"""orion 002: audit_log becomes append-only; the database refuses UPDATE, DELETE and TRUNCATE.

A trigger function raises for every row an UPDATE or DELETE touches (BEFORE ... FOR EACH ROW), and
for every TRUNCATE (BEFORE TRUNCATE FOR EACH STATEMENT: TRUNCATE fires no row triggers). INSERT is
untouched. This guards against application bugs and ad-hoc fixes; it does not stop the table's
owner or a superuser, who can disable triggers, so the services' roles should also lack the
UPDATE, DELETE and TRUNCATE privileges on audit_log. A correction is a new row.

No table changes, so no Piccolo operations: tables.py is unchanged.
"""

from dbmigrate.sql import SQLMigration

ID = "002_audit_log_append_only"
VERSION = "1.38.0"
DESCRIPTION = "audit log append only"

FORWARDS_SQL = """\
CREATE FUNCTION audit_log_append_only()
RETURNS TRIGGER AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Record a correction as a new audit_log row.';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""

BACKWARDS_SQL = """\
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_no_update_or_delete ON audit_log;
DROP FUNCTION audit_log_append_only();
"""


async def forwards():
    manager = SQLMigration(migration_id=ID, app_name="orion", description=DESCRIPTION)
    manager.sql(forwards=FORWARDS_SQL, backwards=BACKWARDS_SQL)
    return manager
