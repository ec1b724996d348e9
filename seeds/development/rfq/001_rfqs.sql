-- Development RFQs of tenant Acme (orion's dev tenants and users, marketdata's reference
-- instruments: the same fixed uuid5 ids), answered by Northwind's sales users.
-- Fixed ids: uuid5 of the seed namespace and 'rfq:<key>', 'rfq_quote:<key>:<dealer>',
-- 'rfq_state_history:<key>:<n>'. Times are relative to the first load.

INSERT INTO rfqs (id, tenant_id, requester_id, instrument_id, instrument_symbol, side, quantity,
                  limit_price, currency, state, expires_at, created_at, updated_at) VALUES
    ('def90c6f-ca3e-5de1-9f5f-ee4a29bcfe74', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', '9b6f9d22-3fb6-5c48-a04c-13b42edaf611', 'AAPL', 'buy', 5000, NULL, 'USD', 'open', now() + interval '2 hours', now() - interval '1 day', now()),
    ('5ecafe31-8375-5383-82d6-947d7f63a26a', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'ebd847fd-4a55-5761-8687-1678f2e207d1', 'EUR/USD', 'sell', 10000000, 1.0850000000, 'USD', 'quoted', now() + interval '5 minutes', now() - interval '1 day', now()),
    ('0f217037-a47d-50b6-9f36-4219d68d1d48', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', '0fba844f-0c01-5b7b-b21b-b201fcf26d92', 'SAP', 'buy', 2500, 240.0000000000, 'EUR', 'accepted', now() + interval '-1 hour', now() - interval '1 day', now()),
    ('5112140a-365f-5f24-91ab-7eacf85ad0c2', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', '56949aad-4b84-5029-b17f-64415b97781a', 'MSFT', 'sell', 1200, NULL, 'USD', 'expired', now() + interval '-1 day' + interval '1 minute', now() - interval '1 day', now()),
    ('82a8f646-4e7b-5eb7-b188-96d72c7318cd', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'fbab054c-0556-50d3-a952-1e078130fb88', 'GBP/USD', 'buy', 2500000, NULL, 'USD', 'cancelled', now() + interval '-3 hours', now() - interval '1 day', now())
ON CONFLICT DO NOTHING;

INSERT INTO rfq_quotes (id, rfq_id, tenant_id, dealer_id, price, quantity, state, valid_until) VALUES
    ('f0f31588-97e2-5693-80e5-7b4b0aa01294', '5ecafe31-8375-5383-82d6-947d7f63a26a', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '861e91d6-91b2-5233-955c-d833cd049415', 1.0852000000, 10000000, 'active', now() + interval '5 minutes'),
    ('4747d3aa-6eca-5b9b-8ae2-d26fed08b731', '5ecafe31-8375-5383-82d6-947d7f63a26a', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '7c262bcd-3edb-5644-8ad9-894fd260d2c0', 1.0851500000, 10000000, 'active', now() + interval '5 minutes'),
    ('4e304151-704f-5d69-b0e6-114993c07c0b', '0f217037-a47d-50b6-9f36-4219d68d1d48', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '861e91d6-91b2-5233-955c-d833cd049415', 238.4000000000, 2500, 'accepted', now() + interval '-1 hour'),
    ('c60c9bf9-720e-5a9b-97e7-d3b7f3c1337c', '0f217037-a47d-50b6-9f36-4219d68d1d48', '6be581f1-5950-5b9f-b4a7-4efa96b33961', '7c262bcd-3edb-5644-8ad9-894fd260d2c0', 238.9000000000, 2500, 'rejected', now() + interval '-1 hour')
ON CONFLICT DO NOTHING;

INSERT INTO rfq_state_history (id, rfq_id, tenant_id, from_state, to_state, changed_by, reason, changed_at)
VALUES
    ('7e3e085f-82a2-5770-8178-0ce640a7fda5', 'def90c6f-ca3e-5de1-9f5f-ee4a29bcfe74', '6be581f1-5950-5b9f-b4a7-4efa96b33961', NULL, 'open', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'created', now() - interval '1 day' + interval '0 minutes'),
    ('49e3e6b2-a4fe-530d-8a36-7d19834d6fad', '5ecafe31-8375-5383-82d6-947d7f63a26a', '6be581f1-5950-5b9f-b4a7-4efa96b33961', NULL, 'open', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'created', now() - interval '1 day' + interval '0 minutes'),
    ('ca0cab28-8f94-55e9-889b-0ce62eb95fcd', '5ecafe31-8375-5383-82d6-947d7f63a26a', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'open', 'quoted', NULL, 'first quote received', now() - interval '1 day' + interval '1 minutes'),
    ('20fa0a23-1843-53d5-8f00-015c443b9203', '0f217037-a47d-50b6-9f36-4219d68d1d48', '6be581f1-5950-5b9f-b4a7-4efa96b33961', NULL, 'open', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', 'created', now() - interval '1 day' + interval '0 minutes'),
    ('07615a1f-037d-54d0-a71c-1b5130f1a60e', '0f217037-a47d-50b6-9f36-4219d68d1d48', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'open', 'quoted', NULL, 'first quote received', now() - interval '1 day' + interval '1 minutes'),
    ('02fe1231-2587-5131-8146-874764b0c940', '0f217037-a47d-50b6-9f36-4219d68d1d48', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'quoted', 'accepted', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', 'accepted best quote', now() - interval '1 day' + interval '2 minutes'),
    ('055c29ea-41ce-5ddc-962b-aa81661b59f6', '5112140a-365f-5f24-91ab-7eacf85ad0c2', '6be581f1-5950-5b9f-b4a7-4efa96b33961', NULL, 'open', 'ea5c2423-48f1-52d4-a19f-b3cd18257af5', 'created', now() - interval '1 day' + interval '0 minutes'),
    ('08ec7ede-c73e-5ea3-9e02-32c113ccfde9', '5112140a-365f-5f24-91ab-7eacf85ad0c2', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'open', 'expired', NULL, 'expired without acceptance', now() - interval '1 day' + interval '1 minutes'),
    ('b1668dfa-1764-53fe-8ee4-44ccda277195', '82a8f646-4e7b-5eb7-b188-96d72c7318cd', '6be581f1-5950-5b9f-b4a7-4efa96b33961', NULL, 'open', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'created', now() - interval '1 day' + interval '0 minutes'),
    ('43ce2960-dddf-5946-9098-8827760f7b95', '82a8f646-4e7b-5eb7-b188-96d72c7318cd', '6be581f1-5950-5b9f-b4a7-4efa96b33961', 'open', 'cancelled', '739a62cc-9f03-5d6c-adf1-3b5c5fa99f75', 'cancelled by requester', now() - interval '1 day' + interval '1 minutes')
ON CONFLICT DO NOTHING;
