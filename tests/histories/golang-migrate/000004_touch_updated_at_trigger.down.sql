DROP TRIGGER wh_items_touch ON wh_items;
DROP FUNCTION wh_touch_updated_at();
