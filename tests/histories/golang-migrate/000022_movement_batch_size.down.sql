ALTER TABLE wh_stock_movements DROP COLUMN batch_size;
