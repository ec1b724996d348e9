-- Up Migration
CREATE INDEX CONCURRENTLY wh_items_warehouse_idx ON wh_items (warehouse_id);

-- Down Migration
DROP INDEX CONCURRENTLY wh_items_warehouse_idx;
