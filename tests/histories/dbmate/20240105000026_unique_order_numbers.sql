-- migrate:up transaction:false
CREATE UNIQUE INDEX CONCURRENTLY wh_orders_number_key ON wh_orders (number);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY wh_orders_number_key;
