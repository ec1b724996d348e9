CREATE TABLE wh_suppliers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    country char(2) NOT NULL,
    email text,
    CONSTRAINT wh_suppliers_email_check CHECK (email ~* '^[^@\s]+@[^@\s]+$')
);
