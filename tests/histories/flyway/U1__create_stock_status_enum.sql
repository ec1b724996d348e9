DROP TYPE wh_stock_status;
