-- migrate:up
ALTER TABLE wh_items RENAME COLUMN title TO display_name;

-- migrate:down
ALTER TABLE wh_items RENAME COLUMN display_name TO title;
