-- Up Migration
CALL wh_restock(1, 7);

-- Down Migration
DELETE FROM wh_stock_movements WHERE note = 'restock';
