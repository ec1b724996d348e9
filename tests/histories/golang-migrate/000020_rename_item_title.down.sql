ALTER TABLE wh_items RENAME COLUMN display_name TO title;
