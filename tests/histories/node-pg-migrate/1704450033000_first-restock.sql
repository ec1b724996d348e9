-- Up Migration
CALL wh_restock((SELECT min(id) FROM wh_items), 7);

-- Down Migration
DELETE FROM wh_stock_movements WHERE note = 'restock';
