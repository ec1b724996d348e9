DELETE FROM wh_orders;
