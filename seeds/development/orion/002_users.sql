-- Development users with their roles and entitlements. Fixed ids: uuid5 of the seed namespace and
-- 'user:<email>', 'user_role:<email>:<role>', 'user_entitlement:<email>' (see seeds/README.md).
-- Roles: admin, trader, sales (dealer side: answers RFQs), viewer. Passwords live in the identity
-- provider, not here.

INSERT INTO users (id, tenant_id, email, username, display_name, status) VALUES
    ('c2766682-74f3-5d8e-8e8a-1e0f8e6ae5e3', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'alice.admin@acme.example', 'alice.admin', 'Alice Admin', 'active'),
    ('739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'tom.trader@acme.example', 'tom.trader', 'Tom Trader', 'active'),
    ('ea5c2423-48f1-52d4-a19f-b3cd18257af5', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'tara.trader@acme.example', 'tara.trader', 'Tara Trader', 'active'),
    ('37a9dd71-2fb3-5a70-a188-312c82ede0f7', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'victor.viewer@acme.example', 'victor.viewer', 'Victor Viewer', 'active'),
    ('5a71b5c8-41e3-5607-a36f-5f695ef211f7', '51c06c43-8db9-5263-bb43-9ba62c361ac4', 'nora.admin@northwind.example', 'nora.admin', 'Nora Admin', 'active'),
    ('861e91d6-91b2-5233-955c-d833cd049415', '51c06c43-8db9-5263-bb43-9ba62c361ac4', 'sam.sales@northwind.example', 'sam.sales', 'Sam Sales', 'active'),
    ('7c262bcd-3edb-5644-8ad9-894fd260d2c0', '51c06c43-8db9-5263-bb43-9ba62c361ac4', 'sally.sales@northwind.example', 'sally.sales', 'Sally Sales', 'active'),
    ('f714f475-74d6-532f-86d2-1e91c0c7af1a', '51c06c43-8db9-5263-bb43-9ba62c361ac4', 'nick.trader@northwind.example', 'nick.trader', 'Nick Trader', 'active'),
    ('379f16db-a39a-5378-aa28-05423b1b21df', 'c3c41700-5d8d-5ff3-8f87-bc4d0631334a', 'hans.admin@helvetia.example', 'hans.admin', 'Hans Admin', 'active'),
    ('ba98c0e5-b9e5-5787-9d77-e70f401815c9', 'c3c41700-5d8d-5ff3-8f87-bc4d0631334a', 'heidi.viewer@helvetia.example', 'heidi.viewer', 'Heidi Viewer', 'active')
ON CONFLICT DO NOTHING;

INSERT INTO user_roles (id, user_id, role) VALUES
    ('3e804510-50c3-5bbf-99ad-1757204c8954', 'c2766682-74f3-5d8e-8e8a-1e0f8e6ae5e3', 'admin'),
    ('1dc57a03-d1cd-5302-9592-28933c09a141', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'trader'),
    ('3a4ce6c1-93c7-5c6a-b87b-e4a4c0a7b634', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', 'trader'),
    ('18caaa4c-385e-560e-b97b-04b0e7a70710', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', 'viewer'),
    ('abf542b1-f11c-563d-91fb-3e7786532844', '37a9dd71-2fb3-5a70-a188-312c82ede0f7', 'viewer'),
    ('9dc7d342-8f3c-5b23-b6fd-d83e0cfab50f', '5a71b5c8-41e3-5607-a36f-5f695ef211f7', 'admin'),
    ('f211026a-4757-5a34-b82e-e52567e19754', '861e91d6-91b2-5233-955c-d833cd049415', 'sales'),
    ('529e8b76-72a4-5c6c-ac60-ae516e109afd', '7c262bcd-3edb-5644-8ad9-894fd260d2c0', 'sales'),
    ('24929867-5a33-504a-8df7-0e4212957cc9', '7c262bcd-3edb-5644-8ad9-894fd260d2c0', 'trader'),
    ('ac2bfd5d-7e6e-59fa-95d8-352b278268b2', 'f714f475-74d6-532f-86d2-1e91c0c7af1a', 'trader'),
    ('4c0bd773-577e-51c3-98a3-a540454501e3', '379f16db-a39a-5378-aa28-05423b1b21df', 'admin'),
    ('824d03d3-a0bd-5c52-89e1-8b1511ad22e2', '379f16db-a39a-5378-aa28-05423b1b21df', 'trader'),
    ('3a9bcc72-6bd5-515b-9b6a-7a27378d55d1', 'ba98c0e5-b9e5-5787-9d77-e70f401815c9', 'viewer')
ON CONFLICT DO NOTHING;

-- asset_classes and venues (MICs) list what a user may trade; an empty list allows nothing.
INSERT INTO user_entitlements (id, user_id, asset_classes, instruments, venues, max_notional,
                               rfq_rate_limit, order_rate_limit, max_open_orders) VALUES
    ('ae40022f-ea6e-5fc0-8e6e-5987008dec93', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', '{equity,etf,fx}', '{}', '{XNYS,XNAS,ARCX}', 5000000.0000, 20, 200, 100),
    ('2a22a143-d2a9-5726-928f-f958fe1ac50a', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', '{equity,etf}', '{}', '{XNYS,XNAS,ARCX}', 1000000.0000, 10, 100, 50),
    ('3e2dc662-da62-5ed9-9a5d-b4820b804688', '37a9dd71-2fb3-5a70-a188-312c82ede0f7', '{}', '{}', '{}', NULL, 0, 0, 0),
    ('2140c48a-47b6-5d02-8da0-a0974b600fb3', '861e91d6-91b2-5233-955c-d833cd049415', '{equity,etf,fx}', '{}', '{XLON,XPAR,XETR,XAMS}', 25000000.0000, 50, 0, 0),
    ('37b55c55-01d0-57dd-ad95-06067b167424', '7c262bcd-3edb-5644-8ad9-894fd260d2c0', '{equity,fx}', '{}', '{XLON,XPAR,XETR,XAMS}', 10000000.0000, 50, 100, 50),
    ('e9949c8f-7427-5a77-a372-578142ad4098', 'f714f475-74d6-532f-86d2-1e91c0c7af1a', '{fx}', '{}', '{XXXX}', 50000000.0000, 30, 300, 100),
    ('45eea1db-b158-5fdd-87d4-527e3564e283', '379f16db-a39a-5378-aa28-05423b1b21df', '{equity,fx}', '{}', '{XSWX,XETR,XXXX}', 2000000.0000, 10, 100, 100),
    ('730757e0-e998-5efb-b2ca-4bb344cd2621', 'ba98c0e5-b9e5-5787-9d77-e70f401815c9', '{}', '{}', '{}', NULL, 0, 0, 0)
ON CONFLICT DO NOTHING;
