-- flyway:executeInTransaction=false
CREATE UNIQUE INDEX CONCURRENTLY wh_orders_number_key ON wh_orders (number);
