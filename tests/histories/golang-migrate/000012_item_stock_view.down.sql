DROP VIEW wh_item_stock;
