ALTER TABLE wh_items DROP COLUMN price_eur;
