-- migrate:up
CALL wh_restock(1, 7);

-- migrate:down
DELETE FROM wh_stock_movements WHERE note = 'restock';
