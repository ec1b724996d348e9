DROP TABLE wh_warehouses;
