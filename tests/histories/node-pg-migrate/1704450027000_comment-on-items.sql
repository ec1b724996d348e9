-- Up Migration
COMMENT ON TABLE wh_items IS 'Stock keeping units; one row per SKU';

-- Down Migration
COMMENT ON TABLE wh_items IS NULL;
