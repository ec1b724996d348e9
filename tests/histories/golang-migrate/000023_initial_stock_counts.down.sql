DELETE FROM wh_stock_movements WHERE note = 'initial count';
