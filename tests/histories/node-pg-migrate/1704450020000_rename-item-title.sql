-- Up Migration
ALTER TABLE wh_items RENAME COLUMN title TO display_name;

-- Down Migration
ALTER TABLE wh_items RENAME COLUMN display_name TO title;
