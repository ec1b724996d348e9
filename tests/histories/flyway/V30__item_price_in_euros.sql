ALTER TABLE wh_items ADD COLUMN price_eur numeric GENERATED ALWAYS AS (price_cents / 100.0) STORED;
