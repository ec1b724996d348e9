-- migrate:up
CALL wh_restock((SELECT min(id) FROM wh_items), 7);

-- migrate:down
DELETE FROM wh_stock_movements WHERE note = 'restock';
