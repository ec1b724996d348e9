-- Up Migration
CREATE SEQUENCE wh_order_number_seq START 1000 INCREMENT 10;

-- Down Migration
DROP SEQUENCE wh_order_number_seq;
