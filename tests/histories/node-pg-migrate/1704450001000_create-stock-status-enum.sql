-- Up Migration
CREATE TYPE wh_stock_status AS ENUM ('in_stock', 'reserved', 'shipped');

-- Down Migration
DROP TYPE wh_stock_status;
