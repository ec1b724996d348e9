-- migrate:up
ALTER TABLE wh_stock_movements ADD COLUMN batch_size wh_positive_int;

-- migrate:down
ALTER TABLE wh_stock_movements DROP COLUMN batch_size;
