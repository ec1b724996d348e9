-- migrate:up
CREATE PROCEDURE wh_restock(p_item bigint, p_quantity integer)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wh_stock_movements (item_id, quantity, note) VALUES (p_item, p_quantity, 'restock');
END
$$;

-- migrate:down
DROP PROCEDURE wh_restock(bigint, integer);
