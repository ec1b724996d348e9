-- migrate:up
-- Keeps updated_at current; the body is dollar-quoted and holds semicolons.
CREATE FUNCTION wh_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER wh_items_touch BEFORE UPDATE ON wh_items
    FOR EACH ROW EXECUTE FUNCTION wh_touch_updated_at();

-- migrate:down
DROP TRIGGER wh_items_touch ON wh_items;
DROP FUNCTION wh_touch_updated_at();
