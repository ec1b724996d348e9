ALTER TABLE wh_items RENAME COLUMN title TO display_name;
