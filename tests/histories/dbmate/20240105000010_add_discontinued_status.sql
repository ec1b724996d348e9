-- migrate:up
ALTER TYPE wh_stock_status ADD VALUE 'discontinued';

-- migrate:down
