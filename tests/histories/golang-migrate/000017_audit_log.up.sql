CREATE TABLE wh_audit_log (
    id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    operation text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

/* Nested dollar quotes: $q$ inside $fn$. */
CREATE FUNCTION wh_audit() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q$INSERT INTO wh_audit_log (table_name, operation) VALUES (%L, %L);$q$,
                   TG_TABLE_NAME, TG_OP);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER wh_suppliers_audit AFTER INSERT OR UPDATE OR DELETE ON wh_suppliers
    FOR EACH ROW EXECUTE FUNCTION wh_audit();
