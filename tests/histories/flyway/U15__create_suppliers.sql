DROP TABLE wh_suppliers;
