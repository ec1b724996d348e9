DROP TRIGGER wh_suppliers_audit ON wh_suppliers;
DROP FUNCTION wh_audit();
DROP TABLE wh_audit_log;
