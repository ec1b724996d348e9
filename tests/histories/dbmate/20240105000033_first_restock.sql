-- migrate:up
DO $$
DECLARE
    first_item bigint := (SELECT min(id) FROM wh_items);  -- CALL itself takes no subquery
BEGIN
    CALL wh_restock(first_item, 7);
END
$$;

-- migrate:down
DELETE FROM wh_stock_movements WHERE note = 'restock';
