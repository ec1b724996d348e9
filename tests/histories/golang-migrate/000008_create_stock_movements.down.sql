DROP TABLE wh_stock_movements;
