-- migrate:up
CREATE FUNCTION wh_stock_level(p_item bigint) RETURNS integer
LANGUAGE sql STABLE AS $body$
    SELECT COALESCE(sum(quantity), 0)::integer FROM wh_stock_movements WHERE item_id = p_item;
$body$;

-- migrate:down
DROP FUNCTION wh_stock_level(bigint);
