-- Up Migration
UPDATE wh_items SET weight_grams = price_cents / 10 WHERE weight_grams IS NULL;

