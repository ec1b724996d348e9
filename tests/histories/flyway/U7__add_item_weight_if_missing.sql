ALTER TABLE wh_items DROP COLUMN weight_grams;
