COMMENT ON TABLE wh_items IS 'Stock keeping units; one row per SKU';
