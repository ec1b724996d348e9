CALL wh_restock(1, 7);
