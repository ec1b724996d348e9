-- migrate:up
INSERT INTO wh_suppliers (name, country, email) VALUES
    ('O''Reilly Parts', 'IE', 'sales@oreilly.example'),
    ('Müller GmbH', 'DE', NULL),
    (E'Tab\tSeparated Ltd', 'GB', 'tabs@example.org');

-- migrate:down
DELETE FROM wh_suppliers WHERE country IN ('IE', 'DE', 'GB');
