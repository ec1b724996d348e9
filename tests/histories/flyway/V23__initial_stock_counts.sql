DO $migration$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT id FROM wh_items WHERE id % 10 = 0 ORDER BY id LOOP
        INSERT INTO wh_stock_movements (item_id, quantity, note) VALUES (item.id, 5, 'initial count');
    END LOOP;
END
$migration$;
