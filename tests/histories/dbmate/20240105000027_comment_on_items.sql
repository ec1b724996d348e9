-- migrate:up
COMMENT ON TABLE wh_items IS 'Stock keeping units; one row per SKU';

-- migrate:down
COMMENT ON TABLE wh_items IS NULL;
