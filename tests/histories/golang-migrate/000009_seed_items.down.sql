DELETE FROM wh_items WHERE sku LIKE 'SKU-%';
