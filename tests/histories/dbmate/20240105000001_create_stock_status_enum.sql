-- migrate:up
CREATE TYPE wh_stock_status AS ENUM ('in_stock', 'reserved', 'shipped');

-- migrate:down
DROP TYPE wh_stock_status;
