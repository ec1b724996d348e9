-- migrate:up
CREATE MATERIALIZED VIEW wh_warehouse_totals AS
SELECT w.code, count(i.id) AS items
FROM wh_warehouses AS w LEFT JOIN wh_items AS i ON i.warehouse_id = w.id
GROUP BY w.code
WITH DATA;

-- migrate:down
DROP MATERIALIZED VIEW wh_warehouse_totals;
