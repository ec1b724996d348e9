-- migrate:up
CREATE VIEW wh_item_stock AS
SELECT i.id, i.sku, wh_stock_level(i.id) AS on_hand
FROM wh_items AS i;

-- migrate:down
DROP VIEW wh_item_stock;
