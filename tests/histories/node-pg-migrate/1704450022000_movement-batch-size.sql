-- Up Migration
ALTER TABLE wh_stock_movements ADD COLUMN batch_size wh_positive_int;

-- Down Migration
ALTER TABLE wh_stock_movements DROP COLUMN batch_size;
