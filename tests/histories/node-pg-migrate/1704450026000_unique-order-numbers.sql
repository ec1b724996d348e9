-- Up Migration
CREATE UNIQUE INDEX CONCURRENTLY wh_orders_number_key ON wh_orders (number);

-- Down Migration
DROP INDEX CONCURRENTLY wh_orders_number_key;
