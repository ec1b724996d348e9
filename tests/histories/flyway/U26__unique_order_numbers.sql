DROP INDEX CONCURRENTLY wh_orders_number_key;
