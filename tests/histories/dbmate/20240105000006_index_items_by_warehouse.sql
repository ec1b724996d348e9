-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY wh_items_warehouse_idx ON wh_items (warehouse_id);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY wh_items_warehouse_idx;
