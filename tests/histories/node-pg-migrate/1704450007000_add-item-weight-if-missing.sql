-- Up Migration
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_name = 'wh_items' AND column_name = 'weight_grams'
    ) THEN
        ALTER TABLE wh_items ADD COLUMN weight_grams integer;
    END IF;
END
$$;

-- Down Migration
ALTER TABLE wh_items DROP COLUMN weight_grams;
