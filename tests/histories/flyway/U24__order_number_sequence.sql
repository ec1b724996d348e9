DROP SEQUENCE wh_order_number_seq;
