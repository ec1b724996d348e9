DROP TABLE wh_items;
