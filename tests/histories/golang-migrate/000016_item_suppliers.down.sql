DROP TABLE wh_item_suppliers;
