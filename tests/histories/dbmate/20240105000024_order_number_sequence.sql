-- migrate:up
CREATE SEQUENCE wh_order_number_seq START 1000 INCREMENT 10;

-- migrate:down
DROP SEQUENCE wh_order_number_seq;
