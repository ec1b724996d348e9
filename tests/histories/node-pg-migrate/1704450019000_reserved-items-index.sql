-- Up Migration
CREATE INDEX wh_items_reserved_idx ON wh_items (warehouse_id) WHERE status = 'reserved';

-- Down Migration
DROP INDEX wh_items_reserved_idx;
