ALTER TABLE wh_orders DROP COLUMN channel;
DROP TYPE wh_order_channel;
