-- Development tenants (fixed ids: uuid5 of the seed namespace and 'tenant:<slug>'; see seeds/README.md).
INSERT INTO tenants (id, name, type, status, settings) VALUES
    ('6be581f1-5950-5b9f-b4a7-4efa96b33961', 'Acme Asset Management', 'standard', 'active', '{"base_currency": "USD", "timezone": "America/New_York"}'),
    ('51c06c43-8db9-5263-bb43-9ba62c361ac4', 'Northwind Securities', 'standard', 'active', '{"base_currency": "GBP", "timezone": "Europe/London"}'),
    ('c3c41700-5d8d-5ff3-8f87-bc4d0631334a', 'Helvetia Private Bank', 'standard', 'active', '{"base_currency": "CHF", "timezone": "Europe/Zurich"}')
ON CONFLICT DO NOTHING;
