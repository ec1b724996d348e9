-- Up Migration
UPDATE wh_items SET status = 'discontinued'
WHERE id NOT IN (SELECT item_id FROM wh_stock_movements);

-- Down Migration
UPDATE wh_items SET status = 'in_stock' WHERE status = 'discontinued';
