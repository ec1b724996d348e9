UPDATE wh_items SET status = 'in_stock' WHERE status = 'discontinued';
