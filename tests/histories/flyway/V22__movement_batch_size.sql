ALTER TABLE wh_stock_movements ADD COLUMN batch_size wh_positive_int;
