-- migrate:up
INSERT INTO wh_orders (status, channel)
SELECT (ARRAY['new', 'paid', 'shipped'])[1 + g % 3], (ARRAY['web', 'store'])[1 + g % 2]::wh_order_channel
FROM generate_series(1, 25) AS g;

-- migrate:down
DELETE FROM wh_orders;
