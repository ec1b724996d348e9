DROP FUNCTION wh_stock_level(bigint);
