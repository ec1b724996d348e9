ALTER TABLE wh_orders DROP CONSTRAINT wh_orders_status_check;
