DROP INDEX CONCURRENTLY wh_items_warehouse_idx;
