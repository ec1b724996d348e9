-- migrate:up
INSERT INTO wh_items (sku, title, price_cents, warehouse_id)
SELECT 'SKU-' || lpad(g::text, 4, '0'), 'Item ' || g, g * 125,
       (SELECT id FROM wh_warehouses WHERE code = CASE WHEN g % 2 = 0 THEN 'AMS1' ELSE 'FRA1' END)
FROM generate_series(1, 60) AS g;

-- migrate:down
DELETE FROM wh_items WHERE sku LIKE 'SKU-%';
