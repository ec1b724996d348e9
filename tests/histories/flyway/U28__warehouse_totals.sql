DROP MATERIALIZED VIEW wh_warehouse_totals;
