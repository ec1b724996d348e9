UPDATE wh_items SET status = 'discontinued'
WHERE id NOT IN (SELECT item_id FROM wh_stock_movements);
