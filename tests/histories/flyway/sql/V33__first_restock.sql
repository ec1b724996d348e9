CALL wh_restock((SELECT min(id) FROM wh_items), 7);
