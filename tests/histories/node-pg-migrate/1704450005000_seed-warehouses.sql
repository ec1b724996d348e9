-- Up Migration
INSERT INTO wh_warehouses (code, name) VALUES
    ('AMS1', 'Amsterdam'),
    ('FRA1', 'Frankfurt'),
    ('LON1', 'London; Docklands'),  -- a semicolon inside a string
    ('DUB1', 'Dublin /* not a comment */');

-- Down Migration
DELETE FROM wh_warehouses WHERE code IN ('AMS1', 'FRA1', 'LON1', 'DUB1');
