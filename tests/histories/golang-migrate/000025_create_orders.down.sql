DROP TABLE wh_orders;
